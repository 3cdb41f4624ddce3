import {
  headers as natsHeaders,
  NatsError,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from 'nats';
import type { Logger } from '../log.js';
import { ERROR_HEADER, SOURCE_HEADER, SUBJECT_HEADER, validate } from './codec.js';
import { createReaderConsumer, startReader, whenLost } from './reader.js';
import { receiving } from './traced.js';
import { DEAD_LETTER_STREAM, deadLetterSubject, type EventDef } from './subjects.js';

/**
 * Reading JetStream streams without a durable consumer: lookups of stored messages, ordered
 * watches from a sequence, and the typed follower of a state stream. Internal to the kit; the
 * `Bus` offers them.
 */

/** A received event: its payload, subject and stream sequence (the cursor of replayable streams). */
export interface Delivery<P> {
  payload: P;
  subject: string;
  seq: number;
  time: Date;
}

/** A message as a stream stores it. */
export interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  time: Date;
  /** A header's value, undefined when absent. */
  header(name: string): string | undefined;
}

/** What a stream holds. */
export interface StreamState {
  messages: number;
  /** The sequence of the first message kept (the next one when the stream is empty). */
  firstSeq: number;
  /** The sequence of the last message (0 when it has never had one). */
  lastSeq: number;
  /** Messages per subject, when asked for with `subjects`. */
  subjects?: Record<string, number>;
}

/** A message of a watch, as the stream has it. */
export interface WatchedMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
}

export interface WatchOptions {
  /** The first stream sequence to deliver. @default 1: every message retained */
  startSeq?: number;
  /**
   * Starts with the last message of each subject the filter matches (the current state of each),
   * instead of at `startSeq`.
   */
  lastPerSubject?: boolean;
  /** Messages pulled per batch. @default 256 */
  batch?: number;
  /** Each message in stream order, synchronously as it arrives (keep it short). */
  onMessage(message: WatchedMessage): void;
}

/** A running watch of a subject. */
export interface Watch {
  /** Resolves once the watch ended: on its own (with the error, if there is one), or after `stop`. */
  readonly ended: Promise<Error | undefined>;
  /**
   * Stops delivering and deletes the consumer. Idempotent. A consumer that could not be deleted is
   * removed by the server after 30 s without pulls.
   */
  stop(): Promise<void>;
}

export interface FollowOptions<P> {
  /** Subject filter built with the definition's `filter()`. @default every subject of the definition */
  filter?: string;
  /**
   * Applies one event; the next waits for it. Following starts from the first retained event; an
   * event whose handling failed (a throw here) is handled again after `retryMs`, and one may be
   * handled again after the consumer was lost, so this must be idempotent.
   */
  handle(delivery: Delivery<P>): void | Promise<void>;
  /** How long to wait before trying again while the stream does not exist (or the consumer failed). @default 1000 */
  retryMs?: number;
}

/** A running follower of a state stream. */
export interface Following {
  /** Resolves once every event retained when following started has been handled. */
  readonly caughtUp: Promise<void>;
  readonly isCaughtUp: boolean;
  /** Events that did not parse (each dead-lettered once). */
  readonly malformed: number;
  stop(): Promise<void>;
}

export interface JetStreamContext {
  readonly jetstream: JetStreamClient;
  manager(): Promise<JetStreamManager>;
  readonly log: Logger;
  /** Counts a dead letter written. */
  deadLettered(): void;
}

/**
 * Keeps a message nobody can consume in the dead-letter stream, with why, and where it came from.
 * With `source` (`<stream>:<sequence>` of a stored message), it is kept once however often it is
 * read: the message id, and a look at the subject's last dead letter beyond the duplicate window.
 */
export async function deadLetter(
  ctx: JetStreamContext,
  subject: string,
  data: Uint8Array,
  error: string,
  source?: string,
): Promise<void> {
  const letter = deadLetterSubject(subject);
  try {
    if (source) {
      const last = await (await ctx.manager()).streams
        .getMessage(DEAD_LETTER_STREAM.name, { last_by_subj: letter })
        .catch(() => undefined);
      if (last?.header?.get(SOURCE_HEADER) === source) return;
    }
    ctx.deadLettered();
    const h = natsHeaders();
    h.set(ERROR_HEADER, error.slice(0, 1024));
    h.set(SUBJECT_HEADER, subject);
    if (source) h.set(SOURCE_HEADER, source);
    await ctx.jetstream.publish(letter, data, { headers: h, msgID: source });
  } catch (publishError) {
    ctx.log.error({ err: publishError, subject }, 'could not dead-letter a message');
  }
}

/** The last message of a subject in a stream; undefined when it has none. */
export async function lastMessage(
  ctx: JetStreamContext,
  stream: string,
  subject: string,
): Promise<StoredMessage | undefined> {
  const manager = await ctx.manager();
  try {
    const message = await manager.streams.getMessage(stream, { last_by_subj: subject });
    return {
      seq: message.seq,
      subject: message.subject,
      data: message.data,
      time: message.time,
      header: (name) => message.header?.get(name) || undefined,
    };
  } catch (error) {
    if (error instanceof NatsError && /no message found/i.test(error.message)) return undefined;
    throw error;
  }
}

/** The state of a stream; `subjects` (a filter) asks for the count of messages per subject. */
export async function streamState(
  ctx: JetStreamContext,
  stream: string,
  options?: { subjects?: string },
): Promise<StreamState> {
  const manager = await ctx.manager();
  const { state } = await manager.streams.info(
    stream,
    options?.subjects ? { subjects_filter: options.subjects } : undefined,
  );
  return {
    messages: state.messages,
    firstSeq: state.first_seq,
    lastSeq: state.last_seq,
    ...(options?.subjects ? { subjects: state.subjects ?? {} } : {}),
  };
}

/**
 * Watches a subject (or every subject a pattern with `*` matches) from a sequence, through a
 * reader (see reader.ts): a consumer without acks, recreated from the next sequence when lost,
 * deleted on `stop`.
 */
export async function watchStream(
  ctx: JetStreamContext,
  stream: string,
  subject: string,
  options: WatchOptions,
): Promise<Watch> {
  return startReader(ctx, {
    stream,
    filter: subject,
    startSeq: options.startSeq ?? 1,
    lastPerSubject: options.lastPerSubject,
    batch: options.batch ?? 256,
    onMessage: (msg) =>
      receiving(stream, msg, () => options.onMessage({ seq: msg.seq, subject: msg.subject, data: msg.data })),
  });
}

/**
 * Follows a state stream (one that keeps the last events of each subject): replays every
 * retained event of the definition, validated, then stays live, through a reader's consumer (no
 * durable state: every replica reads everything; see reader.ts), recreated from the next event
 * when lost. A malformed event is dead-lettered once and skipped. While the stream does not exist
 * yet, tries again every `retryMs`.
 */
export function followStream<P>(ctx: JetStreamContext, def: EventDef<P>, options: FollowOptions<P>): Following {
  const { log } = ctx;
  const filter = options.filter ?? def.filter();
  let stopped = false;
  let messages: ConsumerMessages | undefined;
  let caughtUp = false;
  let malformed = 0;
  let markCaughtUp!: () => void;
  const caughtUpPromise = new Promise<void>((resolve) => (markCaughtUp = resolve)).then(() => {
    caughtUp = true;
  });

  async function apply(message: JsMsg): Promise<void> {
    const event = validate(def.schema, def.version, message.data, message.headers);
    if (!event.ok) {
      malformed++;
      log.warn({ subject: message.subject, seq: message.seq, error: event.error }, 'malformed event dead-lettered');
      await deadLetter(ctx, message.subject, message.data, event.error, `${def.stream}:${message.seq}`);
      return;
    }
    const delivery = {
      payload: event.value,
      subject: message.subject,
      seq: message.seq,
      time: new Date(Math.floor(message.info.timestampNanos / 1e6)),
    };
    await receiving(def.prefix, message, () => options.handle(delivery));
  }

  /** The sequence of the first event not handled yet. */
  let nextSeq = 1;
  const loop = (async () => {
    while (!stopped) {
      try {
        const consumer = await createReaderConsumer(ctx, def.stream, filter, nextSeq);
        // `bind`: no consumer info requests, which a consumer on a dead node never answers.
        const current = await consumer.consume({ max_messages: 1024, expires: 10_000, bind: true });
        messages = current;
        whenLost(current, () => current.stop(new Error('the consumer missed its heartbeats: its NATS node is gone')));
        if (stopped) current.stop();
        if ((await consumer.info(true)).num_pending === 0) markCaughtUp();
        let deliverySeq = 0;
        for await (const message of current) {
          // A message lost in transit (AckNone: never redelivered): read again from the next one.
          if (message.info.deliverySequence !== ++deliverySeq) throw new Error('a gap in the delivery sequence');
          await apply(message);
          nextSeq = message.seq + 1;
          if (message.info.pending === 0) markCaughtUp();
        }
        void consumer.delete().catch(() => {});
        const error = await current.closed();
        if (error) throw error;
      } catch (error) {
        messages?.stop();
        if (stopped) break;
        log.warn({ err: error, stream: def.stream, filter, nextSeq }, 'cannot follow events yet; retrying');
        await new Promise((resolve) => setTimeout(resolve, options.retryMs ?? 1000));
      }
    }
  })();

  return {
    caughtUp: caughtUpPromise,
    get isCaughtUp() {
      return caughtUp;
    },
    get malformed() {
      return malformed;
    },
    async stop() {
      stopped = true;
      messages?.stop();
      await loop;
    },
  };
}
