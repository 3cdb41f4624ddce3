import type { ConsumeStart, EventSource, SourceConsumption, SourceMessage } from './source.js';

/**
 * The consumers of a hub: each one created is tracked until it exists, and each one stopped until
 * it is gone, so that the hub's close() can wait for all of them (a consumer that arrives when
 * nobody wants it any more is stopped on arrival).
 */
export class Consumers {
  private readonly starting = new Set<Promise<unknown>>();
  private readonly stopping = new Set<Promise<void>>();

  constructor(private readonly source: EventSource) {}

  /** `source.consume`, tracked until the consumer exists. */
  consume(
    stream: string,
    subject: string,
    start: ConsumeStart,
    onMessage: (message: SourceMessage) => void,
    onError: (error: Error) => void,
  ): Promise<SourceConsumption> {
    const creation = this.source.consume(stream, subject, start, onMessage, onError);
    this.starting.add(creation);
    void creation.then(
      () => this.starting.delete(creation),
      () => this.starting.delete(creation),
    );
    return creation;
  }

  /** Stops a consumption (if there is one yet), tracked until it has stopped. */
  stop(consumption: SourceConsumption | undefined): void {
    if (!consumption) return;
    const stopped = consumption.stop().finally(() => this.stopping.delete(stopped));
    this.stopping.add(stopped);
  }

  /** Runs `then` once `ready` settles (a consumer being created is stopped when it exists), tracked likewise. */
  afterReady(ready: Promise<void>, then: () => void): void {
    const stopped = ready.then(then, () => {});
    this.stopping.add(stopped);
    void stopped.finally(() => this.stopping.delete(stopped));
  }

  /** Resolves once no consumer is being created or stopped. */
  async settled(): Promise<void> {
    while (this.stopping.size > 0 || this.starting.size > 0)
      await Promise.allSettled([...this.stopping, ...this.starting]);
  }
}

/** Whether a subject has a `*` token: it matches many. */
export const isWildcard = (subject: string) => subject.split('.').includes('*');

/** One consumer of a whole pattern, and the groups it feeds, by subject. */
export interface PatternFeed<G> {
  key: string;
  ready: Promise<void>;
  consumption?: SourceConsumption;
  groups: Map<string, G>;
}

/** The part of a hub's group (the watches of one subject) that says what feeds it. */
export interface Fed<G> {
  stream: string;
  subject: string;
  /** The key of the subject's pattern (stream and pattern). */
  patternKey: string;
  /** The pattern feed feeding the group, if it has no consumer of its own. */
  feed?: PatternFeed<G>;
  /** The sequence of the last message the group delivered (or of the subject's last message when it started). */
  lastSeq: number;
  /** Settles once the group is fed from `lastSeq` on; rejects if it cannot be. */
  ready: Promise<void>;
  /** The group's own consumer, if it has one. */
  consumption?: SourceConsumption;
  /** The group's watches (the feeds look at how many are left only). */
  readonly members: { readonly size: number };
}

/** How createFeeds feeds the groups of its hub, and what it hands them. */
export interface FeedsOptions<G> {
  /** See HubOptions.patternConsumerAt. */
  patternConsumerAt: number;
  /** Hands a message of the group's subject to the group. */
  deliver(group: G, message: SourceMessage): void;
  /** The group's consumer (or its pattern's) failed: every watch of the group is over. */
  fail(group: G, error: Error): void;
}

/** What feeds the groups of a hub (see createFeeds). */
export interface Feeds<G> {
  /** Starts feeding a new group, and sets its `ready`. */
  open(group: G, pattern: string): void;
  /**
   * Stops what fed a group that was closed, and it only: its consumer, or its pattern feed once no
   * group is left on it.
   */
  close(group: G): void;
  /** Consumers of a whole pattern, each feeding many groups. */
  readonly patternConsumers: number;
  /** Messages received by the groups' consumers and the pattern feeds since start. */
  readonly messages: number;
}

/**
 * Feeds each group of a hub from the subject's last message on: while few subjects of its pattern
 * are watched, through a consumer of its own; from `patternConsumerAt` groups with a consumer of
 * their own on a pattern on, through one consumer of the whole pattern (a "pattern feed", started
 * at the end of the stream), which hands each message to its subject's group, if any. NATS then
 * keeps one consumer, not thousands, which matters to nats-server, whose work for each stored
 * message grows with the number of consumers on its stream, at the price of reading the pattern's
 * unwatched subjects too. A group keeps the feed it started with for its life.
 */
export function createFeeds<G extends Fed<G>>(
  source: EventSource,
  consumers: Consumers,
  options: FeedsOptions<G>,
): Feeds<G> {
  const { patternConsumerAt, deliver, fail } = options;
  const feeds = new Map<string, PatternFeed<G>>();
  /** Groups with a consumer of their own, by pattern key. */
  const ownConsumers = new Map<string, number>();
  let messages = 0;

  function openFeed(stream: string, pattern: string, key: string): PatternFeed<G> {
    const feed: PatternFeed<G> = { key, ready: Promise.resolve(), groups: new Map() };
    feed.ready = (async () => {
      const end = await source.lastSeq(stream);
      const consumption = await consumers.consume(
        stream,
        pattern,
        end + 1,
        (message) => {
          messages++;
          const group = feed.groups.get(message.subject);
          if (group) deliver(group, message);
        },
        (error) => {
          if (feeds.get(key) === feed) feeds.delete(key);
          for (const group of [...feed.groups.values()]) fail(group, error);
        },
      );
      feed.consumption = consumption;
      if (feed.groups.size === 0) consumers.stop(consumption);
    })();
    feed.ready.catch(() => {
      if (feeds.get(key) === feed) feeds.delete(key);
    });
    return feed;
  }

  return {
    open(group, pattern) {
      const { stream, subject, patternKey } = group;
      const own = ownConsumers.get(patternKey) ?? 0;
      // A pattern feed hands messages to the group of their exact subject: a wildcard group reads on its own.
      const wildcard = isWildcard(subject);
      let feed = wildcard ? undefined : feeds.get(patternKey);
      if (!feed && !wildcard && own >= patternConsumerAt) {
        feed = openFeed(stream, pattern, patternKey);
        feeds.set(patternKey, feed);
      }
      if (feed) {
        group.feed = feed;
        feed.groups.set(subject, group);
        // Once the feed reads every new message of the pattern, the subject's last is where the group starts.
        const started = feed.ready;
        group.ready = (async () => {
          await started;
          const last = await source.last(stream, subject);
          group.lastSeq = Math.max(group.lastSeq, last?.seq ?? 0);
        })();
      } else {
        ownConsumers.set(patternKey, own + 1);
        group.ready = (async () => {
          const last = await source.last(stream, subject);
          group.lastSeq = last?.seq ?? 0;
          const consumption = await consumers.consume(
            stream,
            subject,
            group.lastSeq + 1,
            (message) => {
              messages++;
              deliver(group, message);
            },
            (error) => fail(group, error),
          );
          group.consumption = consumption;
          // Everyone left while the consumer was being created.
          if (group.members.size === 0) consumers.stop(consumption);
        })();
      }
    },

    close(group) {
      const { feed } = group;
      if (feed) {
        if (feed.groups.get(group.subject) === group) feed.groups.delete(group.subject);
        if (feed.groups.size > 0) return;
        if (feeds.get(feed.key) === feed) feeds.delete(feed.key);
        consumers.afterReady(feed.ready, () => consumers.stop(feed.consumption));
      } else {
        const own = (ownConsumers.get(group.patternKey) ?? 1) - 1;
        if (own > 0) ownConsumers.set(group.patternKey, own);
        else ownConsumers.delete(group.patternKey);
        consumers.afterReady(group.ready, () => consumers.stop(group.consumption));
      }
    },

    get patternConsumers() {
      return feeds.size;
    },
    get messages() {
      return messages;
    },
  };
}
