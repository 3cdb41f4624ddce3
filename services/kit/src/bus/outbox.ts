/**
 * The transactional outbox (STYLE.md, Durable side effects): a state change and the events that
 * announce it are written to the store in one `Store.commit`, and a relay publishes those
 * events to JetStream afterwards, retrying until NATS takes them. A NATS outage then delays
 * events; it loses none, and stalls no writer.
 *
 * - Order: entries of one key (a cluster id, say) are published one after another in the order
 *   they were written (ids from a monotonic ULID), the next only once the previous is in the
 *   stream; keys go in parallel.
 * - Exactly once in the stream: each entry is published with its id as `Nats-Msg-Id`, so a
 *   repeat (a relay that died after publishing and before deleting the entry, or two replicas'
 *   relays racing) is dropped by the stream within its duplicate window, and acknowledged with
 *   the first copy's sequence.
 * - Traced: an entry keeps the trace context of the write that added it, and its publish
 *   continues that trace (the span of the step or request that changed the state).
 * - At least once after: `onPublished` handlers (storing an event under its stream sequence,
 *   say) run before the entry is deleted, so they must be idempotent. A round's entries of every
 *   key reach one handler call per event, each key's in order, and are deleted in one commit.
 */
import { monotonicFactory } from 'ulid';
import { currentRequestId, withRequestScope, type Logger } from '../log.js';
import { write, type Collection, type Store, type StoredDoc, type Write } from '../store/store.js';
import { traceCarrier, withTraceContext, type TraceCarrier } from '../tracing.js';
import type { Bus } from './bus.js';
import type { EventDef } from './subjects.js';

interface EntryDoc extends StoredDoc {
  /** Entries of one key are published in id order, one at a time. */
  key: string;
  /** The event definition's prefix: which of the outbox's `events` this is. */
  event: string;
  payload: unknown;
  requestId: string | null;
  /**
   * The trace context of the write that added it (W3C `traceparent`, `tracestate`): its publish
   * continues that trace. Missing in entries written before it existed, or without tracing.
   */
  trace?: TraceCarrier | null;
  createdAt: string;
}

/** An event in the stream, as `onPublished` handlers get it. */
export interface Published<P> {
  payload: P;
  /** Its stream sequence: the cursor of replayable streams. */
  seq: number;
  /** The outbox entry's id, which was its `Nats-Msg-Id`. */
  msgId: string;
}

export interface OutboxOptions {
  store: Store;
  bus: Bus;
  log: Logger;
  /** Every event this outbox may carry, so that entries left by an earlier process can be published. */
  events: readonly EventDef<unknown>[];
  /** The collection's name. @default 'outbox' */
  collection?: string;
  /** How often the relay looks for entries nobody announced (another replica's, or left by a crash). @default 1000 */
  pollMs?: number;
  /** Entries read per look. @default 512 */
  batch?: number;
  /** Retry delays after a failed publish, doubling. @default { baseMs: 250, capMs: 5000 } */
  backoff?: { baseMs: number; capMs: number };
}

export interface OutboxStats {
  published: number;
  /** Publishes that failed and will be retried. */
  failures: number;
  /** Entries that can never be published (their payload no longer matches its schema): logged and dropped. */
  dropped: number;
}

export interface Outbox {
  /**
   * The write that puts an event in the outbox, to commit with the state change it announces
   * (`store.commit([write.replace(...), outbox.add(...)])`). @throws TypeError when the payload
   * does not match the event's schema (before anything is written).
   */
  add<P>(def: EventDef<P>, payload: P, options: { key: string }): Write;
  /**
   * Completes an event of `def` just before each publish, for parts that must be fresh when it
   * goes out rather than when it was written (a signed link with a short life, say). The result
   * is validated against the event's schema again.
   */
  beforePublish<P>(def: EventDef<P>, complete: (payload: P) => Promise<P>): void;
  /** Runs after events of `def` are in the stream, in order per key (at least once: be idempotent). */
  onPublished<P>(def: EventDef<P>, handler: (events: Published<P>[]) => Promise<void>): void;
  /** Starts the relay. */
  start(): void;
  /** Tells the relay that entries were committed, so it publishes them now rather than at the next look. */
  kick(): void;
  /** Entries waiting to be published. */
  pending(): Promise<number>;
  readonly stats: OutboxStats;
  /** Stops the relay after its current round (entries left are published by the next start). */
  stop(): Promise<void>;
}

/** Opens the service's outbox collection. The relay runs once `start()` is called. */
export async function createOutbox(options: OutboxOptions): Promise<Outbox> {
  const { store, bus, log } = options;
  const pollMs = options.pollMs ?? 1000;
  const batch = options.batch ?? 512;
  const backoff = options.backoff ?? { baseMs: 250, capMs: 5000 };
  const entries: Collection<EntryDoc> = await store.collection<EntryDoc>({
    name: options.collection ?? 'outbox',
    indexes: [],
  });
  const defs = new Map(options.events.map((def) => [def.prefix, def]));
  const handlers = new Map<string, (events: Published<unknown>[]) => Promise<void>>();
  const completers = new Map<string, (payload: unknown) => Promise<unknown>>();
  const nextId = monotonicFactory();
  const stats: OutboxStats = { published: 0, failures: 0, dropped: 0 };

  let running = false;
  let round: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let failedRounds = 0;

  /** An entry done with: published under `seq`, or dropped (`null`). */
  interface Done {
    entry: EntryDoc;
    seq: number | null;
  }

  /** Publishes one key's entries in order; stops at the first failure. */
  async function publishKey(list: EntryDoc[]): Promise<{ done: Done[]; ok: boolean }> {
    const done: Done[] = [];
    for (const entry of list) {
      const def = defs.get(entry.event);
      if (!def) {
        stats.dropped++;
        log.error({ event: entry.event, id: entry.id }, 'outbox entry of an unknown event dropped');
        done.push({ entry, seq: null });
        continue;
      }
      try {
        const complete = completers.get(entry.event);
        const payload = complete ? await complete(entry.payload) : entry.payload;
        const ack = await withRequestScope(entry.requestId ?? undefined, () =>
          withTraceContext(entry.trace, () => bus.publish(def, payload, { msgId: entry.id })),
        );
        done.push({ entry: { ...entry, payload }, seq: ack.seq });
        stats.published++;
      } catch (error) {
        if (error instanceof TypeError) {
          // Validated when added: only a schema changed under a stored entry gets here.
          stats.dropped++;
          log.error(
            { err: error, event: entry.event, id: entry.id },
            'outbox entry no longer matches its schema: dropped',
          );
          done.push({ entry, seq: null });
          continue;
        }
        stats.failures++;
        return { done, ok: false };
      }
    }
    return { done, ok: true };
  }

  /**
   * Runs the handlers of entries done with (of any keys; each key's in order), then deletes the
   * entries: handlers before deletion, so that an entry whose handler failed is published again
   * (a duplicate the stream drops, acknowledged with the same sequence) and handled again.
   */
  async function settle(done: readonly Done[]): Promise<void> {
    const byEvent = new Map<string, Published<unknown>[]>();
    for (const { entry, seq } of done) {
      if (seq === null) continue;
      const list = byEvent.get(entry.event) ?? [];
      list.push({ payload: entry.payload, seq, msgId: entry.id });
      byEvent.set(entry.event, list);
    }
    for (const [event, published] of byEvent) await handlers.get(event)?.(published);
    await store.commit(done.map(({ entry }) => write.delete(entries, entry.id)));
  }

  /**
   * One round: each key's entries published in order, keys in parallel; then what was published
   * settled in one go (a handler call per event, one commit of deletes). Should that fail, each
   * key is settled alone, so that one key's failing handler holds back no other key.
   */
  async function relayOnce(): Promise<{ more: boolean; failed: boolean }> {
    const page = await entries.find({ orderBy: [{ field: 'id' }], first: batch });
    if (page.nodes.length === 0) return { more: false, failed: false };
    const byKey = new Map<string, EntryDoc[]>();
    for (const entry of page.nodes) {
      const list = byKey.get(entry.key) ?? [];
      list.push(entry);
      byKey.set(entry.key, list);
    }
    const keys = await Promise.all([...byKey.values()].map(publishKey));
    let failed = keys.some((key) => !key.ok);
    try {
      await settle(keys.flatMap((key) => key.done));
    } catch (error) {
      log.warn({ err: error }, 'outbox relay: settling the round failed; settling each key alone');
      for (const key of keys) {
        try {
          await settle(key.done);
        } catch (error) {
          failed = true;
          log.error({ err: error }, 'outbox relay: a handler or the store failed; will retry');
        }
      }
    }
    return { more: page.hasNextPage, failed };
  }

  function schedule(ms: number) {
    clearTimeout(timer);
    if (running) timer = setTimeout(() => relay(), ms);
  }

  function relay(): void {
    if (!running) return;
    if (round) {
      again = true;
      return;
    }
    round = (async () => {
      let failed = false;
      try {
        do {
          again = false;
          const result = await relayOnce();
          failed = result.failed;
          if (result.more && !failed) again = true;
        } while (again && running && !failed);
      } catch (error) {
        failed = true;
        log.error({ err: error }, 'outbox relay failed; will retry');
      }
      if (failed) {
        failedRounds++;
        if (failedRounds === 1 || failedRounds % 20 === 0)
          log.warn({ attempts: failedRounds }, 'outbox: events wait for NATS; retrying');
        schedule(Math.min(backoff.capMs, backoff.baseMs * 2 ** Math.min(failedRounds - 1, 16)));
      } else {
        if (failedRounds > 0) log.info({ attempts: failedRounds }, 'outbox: events flow again');
        failedRounds = 0;
        schedule(pollMs);
      }
    })().finally(() => {
      round = undefined;
    });
  }

  return {
    stats,
    add(def, payload, { key }) {
      if (!defs.has(def.prefix)) throw new TypeError(`${def.prefix} is not one of this outbox's events`);
      const checked = def.schema.safeParse(payload);
      if (!checked.success)
        throw new TypeError(`event does not match ${def.prefix}: ${checked.error.issues[0]?.message}`);
      def.subject(checked.data); // its tokens must be valid now, not at publish time
      return write.insert(entries, {
        id: nextId(),
        key,
        event: def.prefix,
        payload: checked.data,
        requestId: currentRequestId() ?? null,
        trace: traceCarrier() ?? null,
        createdAt: new Date().toISOString(),
      });
    },
    beforePublish(def, complete) {
      completers.set(def.prefix, complete as (payload: unknown) => Promise<unknown>);
    },
    onPublished(def, handler) {
      handlers.set(def.prefix, handler as (events: Published<unknown>[]) => Promise<void>);
    },
    start() {
      running = true;
      relay();
    },
    kick() {
      // While NATS is away the backoff decides; a commit does not hurry it.
      if (failedRounds === 0) relay();
    },
    pending: () => entries.count(),
    async stop() {
      running = false;
      clearTimeout(timer);
      await round;
    },
  };
}
