import {
  AckPolicy,
  ConsumerEvents,
  DeliverPolicy,
  nanos,
  nuid,
  type Consumer,
  type ConsumerMessages,
  type JsMsg,
} from 'nats';
import type { JetStreamContext } from './jetstream.js';

/**
 * Readers: the consumers behind watches and followers, which read a stream from a sequence
 * without acks and without durable state (an R1, in-memory consumer each).
 *
 * nats.js has such a consumer, the ordered consumer, but it does not survive the loss of a NATS
 * node: nats-server 2.9 places an R1 consumer on any peer of its stream, the dead one included,
 * and the create request for it is never answered; the library then waits (and retries) for
 * minutes. A reader bounds each creation to `CREATE_TIMEOUT_MS`, deletes what it abandoned and
 * asks again for a fresh placement, and recreates its consumer from the next sequence when it
 * loses it (missed heartbeats, a gap in the delivery sequence, the consumer gone).
 */

/** How long one try at creating a consumer may take, and how many tries a creation gets. */
const CREATE_TIMEOUT_MS = 3_000;
const CREATE_ATTEMPTS = 6;
/** Heartbeats missed in a row after which a consumer counts as lost (its NATS node died). */
const LOST_AFTER_MISSED_HEARTBEATS = 2;
/**
 * How often an idle consumer's server sends a heartbeat: a consumer lost with its node is noticed
 * 4-6 s after the node died (two missed), and recreated within a few seconds more, well inside
 * the 20 s after which a graphql-ws client gives a silent subscription up. nats.js would take half
 * the pull's expiry (5 s: noticed after 10-15 s). The cost: one small message every 2 s per idle
 * consumer (500 a second for the gateway's 1,000 busiest subjects).
 */
const HEARTBEAT_MS = 2_000;
/** A consumer nobody pulls from (its reader died with its process) is removed after this. */
const INACTIVE_THRESHOLD_MS = 30_000;

/**
 * Creates a reader's consumer from `startSeq` (or, with `lastPerSubject`, from the last message of
 * each subject the filter matches), placed afresh until a try is answered in time.
 */
export async function createReaderConsumer(
  ctx: JetStreamContext,
  stream: string,
  filter: string,
  startSeq: number,
  lastPerSubject = false,
): Promise<Consumer> {
  const manager = await ctx.manager();
  for (let attempt = 1; ; attempt++) {
    const name = `reader_${nuid.next()}`;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer to the creation of a consumer of ${stream} in ${CREATE_TIMEOUT_MS} ms`)),
        CREATE_TIMEOUT_MS,
      );
    });
    try {
      const created = manager.consumers.add(stream, {
        name,
        // One filter as a string: an array asks for multi-filter consumers, which nats-server 2.9
        // lacks (the call never returns).
        filter_subject: filter,
        ...(lastPerSubject
          ? { deliver_policy: DeliverPolicy.LastPerSubject }
          : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, startSeq) }),
        ack_policy: AckPolicy.None,
        max_deliver: 1,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: nanos(INACTIVE_THRESHOLD_MS),
      });
      created.catch(() => {});
      const info = await Promise.race([created, late]);
      return ctx.jetstream.consumers.getPullConsumerFor(info);
    } catch (error) {
      // Placed on a node that is gone, most likely: forget it (the metadata leader answers even
      // when the node does not) and ask again.
      void manager.consumers.delete(stream, name).catch(() => {});
      if (/stream not found/i.test(String(error)) || attempt >= CREATE_ATTEMPTS) throw error;
      ctx.log.warn({ stream, filter, attempt, err: error }, 'consumer creation failed; placing it again');
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Calls `lost` once the consumer of `messages` missed its heartbeats `LOST_AFTER_MISSED_HEARTBEATS`
 * times in a row: its NATS node died, most likely, and it will not come back by itself.
 */
export function whenLost(messages: ConsumerMessages, lost: () => void): void {
  void (async () => {
    for await (const status of await messages.status()) {
      if (status.type === ConsumerEvents.HeartbeatsMissed && Number(status.data) >= LOST_AFTER_MISSED_HEARTBEATS) {
        lost();
        return;
      }
    }
  })().catch(() => {});
}

export interface ReaderOptions {
  stream: string;
  /** One subject, or a pattern. */
  filter: string;
  /** The first stream sequence to deliver (at least 1). */
  startSeq: number;
  /**
   * Starts with the last message of each subject the filter matches instead; a consumer recreated
   * before the first message arrived starts so again, later ones from the next sequence.
   */
  lastPerSubject?: boolean;
  /** Messages pulled per batch. */
  batch: number;
  /** Each message of the filter once, in stream order, synchronously as it arrives. */
  onMessage(message: JsMsg): void;
}

/** A running reader. */
export interface Reader {
  /** Resolves once the reader ended: after `stop`, or with the error that it could not recover from. */
  readonly ended: Promise<Error | undefined>;
  /** Stops delivering and deletes the consumer. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Reads `filter` from `startSeq` for as long as it is not stopped, recreating its consumer from
 * the next sequence whenever it loses it. Resolves once the first consumer exists; @throws when
 * it cannot be created (the stream does not exist, or no try was answered).
 */
export async function startReader(ctx: JetStreamContext, options: ReaderOptions): Promise<Reader> {
  const { stream, filter, batch } = options;
  let nextSeq = Math.max(1, options.startSeq);
  let lastPerSubject = options.lastPerSubject ?? false;
  let stopped = false;
  let consumer = await createReaderConsumer(ctx, stream, filter, nextSeq, lastPerSubject);
  let end!: (error: Error | undefined) => void;
  const ended = new Promise<Error | undefined>((resolve) => (end = resolve));
  let current: ConsumerMessages | undefined;
  let recovering: Promise<void> | undefined;

  async function consume(): Promise<void> {
    let deliverySeq = 0;
    let lost = false;
    const messages = await consumer.consume({
      max_messages: batch,
      // Pull requests expire every 10 s, heartbeats every 2 s: a lost consumer is noticed within
      // seconds. `bind`: no consumer info requests, which a consumer on a dead node never answers.
      expires: 10_000,
      idle_heartbeat: HEARTBEAT_MS,
      bind: true,
      callback: (message) => {
        if (lost || stopped) return;
        if (message.info.deliverySequence !== deliverySeq + 1) {
          lost = true;
          recover('a gap in the delivery sequence');
          return;
        }
        deliverySeq = message.info.deliverySequence;
        nextSeq = message.seq + 1;
        lastPerSubject = false;
        options.onMessage(message);
      },
    });
    current = messages;
    whenLost(messages, () => {
      lost = true;
      recover('missed heartbeats');
    });
    void messages.closed().then((error) => {
      if (!lost && !stopped && error) {
        lost = true;
        recover(error.message);
      }
    });
  }

  function recover(why: string): void {
    if (stopped || recovering) return;
    ctx.log.info({ stream, filter, why, nextSeq }, 'reader lost its consumer; recreating it from the next sequence');
    const lostConsumer = consumer;
    current?.stop();
    void lostConsumer.delete().catch(() => {});
    recovering = (async () => {
      try {
        consumer = await createReaderConsumer(ctx, stream, filter, nextSeq, lastPerSubject);
        if (stopped) {
          await consumer.delete().catch(() => {});
          return;
        }
        await consume();
      } catch (error) {
        stopped = true;
        end(error instanceof Error ? error : new Error(String(error)));
      } finally {
        recovering = undefined;
      }
    })();
  }

  await consume();
  let stopping: Promise<void> | undefined;
  return {
    ended,
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        await recovering;
        current?.stop();
        end(undefined);
        await consumer.delete().catch(() => {});
      })()),
  };
}
