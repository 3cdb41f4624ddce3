import type { Bus, Logger, Watch } from '@fleetgraph/kit/core';

/** A message of a subject, as the engine sees it. */
export interface SourceMessage {
  /** The stream sequence: the message's cursor. */
  seq: number;
  subject: string;
  data: Uint8Array;
}

/** Where a consumption starts: at a stream sequence (inclusive), or with the last message of each subject matched. */
export type ConsumeStart = number | { lastPerSubject: true };

/** A running consumption of one subject. */
export interface SourceConsumption {
  /** Stops delivering and removes the consumer. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Where subscriptions read their events: the core knows this interface only, and the JetStream
 * adapter below maps it onto ordered consumers.
 */
export interface EventSource {
  /** The last message on a subject, if it has any. */
  last(stream: string, subject: string): Promise<SourceMessage | undefined>;
  /** The sequence of the stream's last message (0 when it has none). */
  lastSeq(stream: string): Promise<number>;
  /**
   * Delivers every message of the subject (or of every subject a pattern with `*` matches) from
   * `start` (a sequence, inclusive, or the last message of each subject) in order, then each new
   * one, through one consumer; `onError` is called once if the consumption ends on its own.
   */
  consume(
    stream: string,
    subject: string,
    start: ConsumeStart,
    onMessage: (message: SourceMessage) => void,
    onError: (error: Error) => void,
  ): Promise<SourceConsumption>;
  /** Consumers open right now. */
  readonly consumers: number;
  /** False while the source cannot be reached (NATS is away): new watches are refused at once then. */
  readonly available: boolean;
}

/** A JetStream request that failed: the stream is missing, NATS is unreachable, ... */
export class EventSourceError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EventSourceError';
  }
}

/**
 * The source is unreachable (NATS is away, or went away while asked): nothing can start until it is
 * back. Its message is for clients.
 */
export class EventSourceUnavailableError extends EventSourceError {
  constructor(options?: ErrorOptions) {
    super('the event stream is unavailable (NATS is unreachable); retry shortly', options);
    this.name = 'EventSourceUnavailableError';
  }
}

export interface JetStreamSourceOptions {
  bus: Bus;
  log: Logger;
  /** Messages pulled per batch by each consumer. @default 256 */
  batch?: number;
}

/**
 * The event source over JetStream, through the bus: each consumption is a `bus.watch`, an
 * ordered, ephemeral, in-memory pull consumer from a start sequence (no acks; the client library
 * recreates it from the last sequence after a gap or a reconnect), deleted when the consumption
 * stops. One left behind by a gateway that died is removed by the server after 5 minutes without
 * pulls (the library's inactive threshold).
 */
export function createJetStreamSource(options: JetStreamSourceOptions): EventSource {
  const { bus, log } = options;
  let consumers = 0;

  // JetStream requests sent just before NATS went away are lost: nats.js would time them out only
  // after 5 s, by when NATS may be back, and a subscription group still waiting on one would fail
  // the subscribers who joined it after the reconnect. They are failed at the disconnect instead.
  const inFlight = new Set<(error: Error) => void>();
  bus.onStatus((status) => {
    if (status !== 'disconnect') return;
    for (const fail of [...inFlight]) fail(new EventSourceUnavailableError());
  });

  /** Runs a JetStream request, refused at once while NATS is away, and failed if NATS goes away before it answers. */
  async function request<T>(work: () => Promise<T>): Promise<T> {
    if (!bus.connected) throw new EventSourceUnavailableError();
    let fail!: (error: Error) => void;
    const disconnected = new Promise<never>((_, reject) => (fail = reject));
    inFlight.add(fail);
    try {
      return await Promise.race([work(), disconnected]);
    } finally {
      inFlight.delete(fail);
    }
  }

  return {
    get consumers() {
      return consumers;
    },

    get available() {
      return bus.connected;
    },

    async last(stream, subject) {
      try {
        const message = await request(() => bus.lastMessage(stream, subject));
        return message && { seq: message.seq, subject: message.subject, data: message.data };
      } catch (error) {
        if (error instanceof EventSourceUnavailableError) throw error;
        throw new EventSourceError(
          `cannot read the last message of ${subject} in ${stream}: ${(error as Error).message}`,
          { cause: error },
        );
      }
    },

    async lastSeq(stream) {
      try {
        return await request(async () => (await bus.streamState(stream)).lastSeq);
      } catch (error) {
        if (error instanceof EventSourceUnavailableError) throw error;
        throw new EventSourceError(`cannot read the state of ${stream}: ${(error as Error).message}`, { cause: error });
      }
    },

    async consume(stream, subject, start, onMessage, onError) {
      let watch: Watch;
      // Set when the creation was given up (NATS went away meanwhile): a consumer that still
      // arrives delivers nothing and is removed.
      let abandoned = false;
      if (!bus.connected) throw new EventSourceUnavailableError();
      const creation = bus.watch(stream, subject, {
        ...(typeof start === 'number' ? { startSeq: start } : { startSeq: 1, lastPerSubject: true }),
        batch: options.batch ?? 256,
        onMessage: (message) => {
          if (!abandoned) onMessage(message);
        },
      });
      try {
        watch = await request(() => creation);
      } catch (error) {
        abandoned = true;
        void creation.then(
          (created) => created.stop().catch(() => {}),
          () => {},
        );
        if (error instanceof EventSourceUnavailableError) throw error;
        throw new EventSourceError(`cannot consume ${subject} from ${stream}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      consumers++;
      let stopped: Promise<void> | undefined;
      void watch.ended.then((error) => {
        if (stopped) return;
        log.warn({ err: error, subject }, 'subscription consumer ended');
        void stop();
        onError(
          new EventSourceError(`the consumer of ${subject} ended${error ? `: ${error.message}` : ''}`, {
            cause: error,
          }),
        );
      });
      const stop = () =>
        (stopped ??= (async () => {
          try {
            await watch.stop();
          } catch (error) {
            // The server drops it after its inactive threshold anyway.
            log.debug({ err: error, subject }, 'could not delete a subscription consumer');
          } finally {
            consumers--;
          }
        })());
      return { stop };
    },
  };
}
