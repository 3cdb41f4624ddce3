import {
  ConsumerEvents,
  headers as natsHeaders,
  NatsError,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from 'nats';
import type { Logger } from '../log.js';
import { ERROR_HEADER, SOURCE_HEADER, SUBJECT_HEADER, validate } from './codec.js';
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
   * Stops delivering and deletes the consumer. Idempotent. @throws when the consumer could not be
   * deleted (the server removes it after 5 minutes without pulls anyway)
   */
  stop(): Promise<void>;
}

export interface FollowOptions<P> {
  /** Subject filter built with the definition's `filter()`. @default every subject of the definition */
  filter?: string;
  /**
   * Applies one event; the next waits for it. Following starts from the first retained event and
   * starts again from there after a failure (a throw here included), so it must be idempotent.
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

/** Heartbeats missed in a row after which a consumer counts as lost (its NATS node died). */
const LOST_AFTER_MISSED_HEARTBEATS = 2;

/**
 * Ends `messages` with an error once its consumer missed heartbeats `LOST_AFTER_MISSED_HEARTBEATS`
 * times in a row. The client library's own recovery asks the lost consumer for its state, which
 * never answers when the consumer's node died, and waits for ever; ended, the reader starts
 * again from its last sequence on a consumer of its own.
 */
function endWhenLost(messages: ConsumerMessages): void {
  void (async () => {
    for await (const status of await messages.status()) {
      if (status.type === ConsumerEvents.HeartbeatsMissed && Number(status.data) >= LOST_AFTER_MISSED_HEARTBEATS) {
        messages.stop(new Error('the consumer missed its heartbeats: its NATS node is gone'));
        return;
      }
    }
  })().catch(() => {});
}

/**
 * Watches a subject (or every subject a pattern with `*` matches) from a sequence: an ordered,
 * ephemeral, in-memory pull consumer (no acks; the client library recreates it from the last
 * sequence after a gap or a reconnect), deleted on `stop`.
 */
export async function watchStream(
  ctx: JetStreamContext,
  stream: string,
  subject: string,
  options: WatchOptions,
): Promise<Watch> {
  // Creating the consumer can hang when NATS places it on a node that died (nats-server 2.9 keeps
  // the dead node in the stream's peer set, and the client library retries for ever): each try is
  // given CREATE_TIMEOUT_MS, then abandoned for a new one, placed afresh.
  let consumer: Awaited<ReturnType<typeof ctx.jetstream.consumers.get>> | undefined;
  let messages: ConsumerMessages | undefined;
  for (let attempt = 1; !messages; attempt++) {
    const candidate = await ctx.jetstream.consumers.get(stream, {
      filterSubjects: subject,
      opt_start_seq: Math.max(1, options.startSeq ?? 1),
    });
    // Pull requests expire every 10 s (heartbeats every 5 s): a consumer lost with a NATS node is
    // noticed and recreated from the last sequence within seconds, not after the default's minute.
    const consuming = candidate.consume({
      max_messages: options.batch ?? 256,
      expires: 10_000,
      callback: (msg: JsMsg) => options.onMessage({ seq: msg.seq, subject: msg.subject, data: msg.data }),
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), CREATE_TIMEOUT_MS);
    });
    const made = await Promise.race([consuming, late]).finally(() => clearTimeout(timer));
    if (made) {
      consumer = candidate;
      messages = made;
      break;
    }
    // Given up: if it ever arrives, it is stopped and deleted.
    void consuming.then(
      (late) => {
        late.stop();
        return candidate.delete();
      },
      () => {},
    );
    if (attempt >= CREATE_ATTEMPTS)
      throw new Error(`could not create a consumer of ${subject} in ${stream} in ${attempt} tries`);
    ctx.log.warn({ stream, subject, attempt }, 'consumer creation unanswered; trying again');
  }
  endWhenLost(messages);
  const created = consumer!;
  const consuming = messages;
  let stopping: Promise<void> | undefined;
  return {
    ended: consuming.closed().then((error) => error ?? undefined),
    stop: () =>
      (stopping ??= (async () => {
        consuming.stop();
        await created.delete();
      })()),
  };
}

/** How long one try at creating a watch's consumer may take, and how many tries it gets. */
const CREATE_TIMEOUT_MS = 5_000;
const CREATE_ATTEMPTS = 4;

/**
 * Follows a state stream (one that keeps the last events of each subject): replays every
 * retained event of the definition, validated, then stays live, through an ordered consumer (no
 * durable state: every replica reads everything). A malformed event is dead-lettered once and
 * skipped. While the stream does not exist yet, tries again every `retryMs`.
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
    await options.handle({
      payload: event.value,
      subject: message.subject,
      seq: message.seq,
      time: new Date(Math.floor(message.info.timestampNanos / 1e6)),
    });
  }

  const loop = (async () => {
    while (!stopped) {
      try {
        // One filter as a string: an array asks for multi-filter consumers, which nats-server 2.9
        // lacks (the call never returns).
        const consumer = await ctx.jetstream.consumers.get(def.stream, { filterSubjects: filter });
        messages = await consumer.consume({ max_messages: 1024, expires: 10_000 });
        endWhenLost(messages);
        if (stopped) messages.stop();
        const info = await consumer.info();
        if (info.num_pending === 0 && info.delivered.stream_seq === 0) markCaughtUp();
        for await (const message of messages) {
          await apply(message);
          if (message.info.pending === 0) markCaughtUp();
        }
      } catch (error) {
        if (stopped) break;
        log.warn({ err: error, stream: def.stream, filter }, 'cannot follow events yet; retrying');
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
