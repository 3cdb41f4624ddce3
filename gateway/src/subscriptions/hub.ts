import { annotateActiveSpan, type Logger } from '@fleetgraph/kit/core';
import { formatCursor } from './cursor.js';
import { Consumers, createFeeds, isWildcard, type Fed } from './feeds.js';
import { EventSourceUnavailableError, type EventSource, type SourceConsumption, type SourceMessage } from './source.js';

/** Where a watch starts on its subject. */
export type StartFrom = { kind: 'now' } | { kind: 'after'; seq: number } | { kind: 'last' };

/** What a watch reports to its subscriber, in order. */
export interface Listener {
  /** The serialized execution result for the event at `seq`. */
  next(result: string, seq: number): void;
  /** The binding's `complete` condition held for the last event: the watch is over. */
  complete(): void;
  /** The event source failed: the watch is over. */
  error(error: Error): void;
}

/** The part of a watch that decides how an event becomes a result. */
export interface Execution {
  /** Watches with equal keys on one subject share one execution per event. */
  key: string;
  /** Executes the subscriber's selection over an event payload; returns the serialized result. */
  execute(payload: Record<string, unknown>): string;
  /** Whether the payload's `cursor` field is set to the event's cursor before executing. */
  cursorField: boolean;
  /** Ends the watch after an event for which it holds. */
  isComplete?: (payload: Record<string, unknown>) => boolean;
}

/** What a subscriber watches: a subject of a stream, from where, and how its events become results. */
export interface WatchRequest {
  stream: string;
  subject: string;
  /**
   * The pattern the subject is one of (its binding's template with `*` for each placeholder):
   * subjects of one pattern may be read through one consumer of the whole pattern.
   */
  pattern: string;
  from: StartFrom;
  execution: Execution;
  listener: Listener;
  /**
   * Whether an event reaches this watch (its watermark moves past the others all the same).
   * @default every event
   */
  accepts?: (payload: Record<string, unknown>) => boolean;
}

/**
 * A watch refused for a cursor past the last event of its stream (`after: "9999999999"`): no event
 * has it yet, so every live event up to it would be skipped, silently.
 */
export class CursorAheadError extends Error {
  constructor(
    readonly seq: number,
    readonly lastSeq: number,
  ) {
    super(`cursor ${seq} is past the last event (${lastSeq})`);
    this.name = 'CursorAheadError';
  }
}

/** A started watch. */
export interface Watch {
  /** Stops the watch; no listener call follows. Idempotent. */
  close(): void;
}

/** How a hub reads its subjects. */
export interface HubOptions {
  /**
   * From how many subjects of one pattern watched at once the hub reads new ones through one
   * consumer of the whole pattern rather than a consumer each. @default 32
   */
  patternConsumerAt?: number;
}

/** A hub's state and counters (the engine's stats take executions and messages from them). */
export interface HubStats {
  /** Subjects watched: each fed by a consumer of its own or by its pattern's consumer. */
  groups: number;
  /** Consumers of a whole pattern, each feeding many groups. */
  patternConsumers: number;
  /** Open watches. */
  watches: number;
  /** Watches replaying on their own consumer before joining their subject's shared one. */
  catchingUp: number;
  /** Selection executions since start. */
  executions: number;
  /** Messages received from the source since start. */
  messages: number;
  /** Messages that were not a JSON object and were skipped. */
  malformed: number;
  /** Watches ended with an error because their subject's feed failed, since start. */
  failed: number;
}

/**
 * The subscription core: one group per subject, fed by one consumer, which starts after the
 * subject's last message when the group is created; in it, one bucket per execution key, holding
 * the watches that share an execution per event.
 *
 * The consumer feeding a group is its own while few subjects of its pattern are watched, and from
 * `patternConsumerAt` subjects on one consumer of the whole pattern (see createFeeds in feeds.ts).
 *
 * Every watch has a watermark: the sequence up to which it has seen every message of its subject.
 * A group delivers a message only to watches below it, so a watch can join a group at any time
 * without a duplicate, and joins only when its watermark has reached what the group delivered so
 * far, so without a gap. A watch that starts behind the group (a cursor, the last message read
 * while the group moved on) first replays on a consumer of its own, and joins the group as soon
 * as it has caught up with it.
 */
export interface Hub {
  watch(request: WatchRequest): Promise<Watch>;
  stats(): HubStats;
  /** Closes every watch (without listener calls) and stops every consumer. */
  close(): Promise<void>;
}

interface Bucket {
  execution: Execution;
  members: Set<Member>;
}

/** The watches of one subject, and what feeds them (see Fed). */
interface Group extends Fed<Group> {
  key: string;
  /** Every watch of the subject: joined, or catching up to join. */
  members: Set<Member>;
  buckets: Map<string, Bucket>;
}

interface Member {
  group: Group;
  execution: Execution;
  listener: Listener;
  accepts?: (payload: Record<string, unknown>) => boolean;
  watermark: number;
  bucket?: Bucket;
  catchUp?: CatchUp;
  closed: boolean;
}

/** A member's own consumer while it replays; `active` turns false when it joins its group or leaves. */
interface CatchUp {
  active: boolean;
  consumption?: SourceConsumption;
}

const decoder = new TextDecoder();

/** Creates a hub over an event source (see Hub). */
export function createHub(source: EventSource, log: Logger, options: HubOptions = {}): Hub {
  const groups = new Map<string, Group>();
  const consumers = new Consumers(source);
  const feeds = createFeeds<Group>(source, consumers, {
    patternConsumerAt: options.patternConsumerAt ?? 32,
    deliver: onGroupMessage,
    fail,
  });
  let executions = 0;
  let messages = 0;
  let malformed = 0;
  let failed = 0;
  let catchingUp = 0;
  let closed = false;

  function parse(message: SourceMessage, subject: string): Record<string, unknown> | undefined {
    try {
      const payload = JSON.parse(decoder.decode(message.data)) as unknown;
      if (payload !== null && typeof payload === 'object' && !Array.isArray(payload))
        return payload as Record<string, unknown>;
    } catch {
      // reported below
    }
    malformed++;
    log.warn({ subject, seq: message.seq }, 'skipped an event that is not a JSON object');
    return undefined;
  }

  /** Executes a selection over an event, and tells whether the event ends the watch. */
  function run(execution: Execution, payload: Record<string, unknown>, seq: number) {
    executions++;
    const input = execution.cursorField ? { ...payload, cursor: formatCursor(seq) } : payload;
    return { result: execution.execute(input), done: execution.isComplete?.(payload) ?? false };
  }

  function leave(member: Member) {
    if (member.closed) return;
    member.closed = true;
    endCatchUp(member);
    const { group, bucket } = member;
    if (bucket) {
      bucket.members.delete(member);
      if (bucket.members.size === 0) group.buckets.delete(member.execution.key);
    }
    group.members.delete(member);
    if (group.members.size === 0) closeGroup(group);
  }

  /** Forgets a group without members, and stops what fed it only (see Feeds.close). */
  function closeGroup(group: Group) {
    if (groups.get(group.key) !== group) return;
    groups.delete(group.key);
    feeds.close(group);
  }

  function join(member: Member) {
    const { group, execution } = member;
    let bucket = group.buckets.get(execution.key);
    if (!bucket) {
      bucket = { execution, members: new Set() };
      group.buckets.set(execution.key, bucket);
    }
    bucket.members.add(member);
    member.bucket = bucket;
  }

  /** Delivers one message to one member on its own (replay); returns whether the member goes on. */
  function deliverAlone(member: Member, message: SourceMessage): boolean {
    if (member.closed || message.seq <= member.watermark) return !member.closed;
    member.watermark = message.seq;
    const payload = parse(message, member.group.subject);
    if (!payload || (member.accepts && !member.accepts(payload))) return true;
    const { result, done } = run(member.execution, payload, message.seq);
    member.listener.next(result, message.seq);
    if (done && !member.closed) {
      leave(member);
      member.listener.complete();
    }
    return !member.closed;
  }

  function onGroupMessage(group: Group, message: SourceMessage) {
    // A pattern feed can deliver a message the group's start (the subject's last) already covers.
    if (message.seq > group.lastSeq) group.lastSeq = message.seq;
    if (group.buckets.size === 0) return;
    const payload = parse(message, group.subject);
    if (!payload) {
      for (const member of group.members) if (member.bucket) member.watermark = Math.max(member.watermark, message.seq);
      return;
    }
    let delivered = 0;
    for (const bucket of group.buckets.values()) {
      let outcome: { result: string; done: boolean } | undefined;
      for (const member of bucket.members) {
        if (message.seq <= member.watermark) continue;
        member.watermark = message.seq;
        if (member.accepts && !member.accepts(payload)) continue;
        outcome ??= run(bucket.execution, payload, message.seq);
        member.listener.next(outcome.result, message.seq);
        delivered++;
        if (outcome.done && !member.closed) {
          leave(member);
          member.listener.complete();
        }
      }
    }
    // The span of the message's handling (the kit's watch: `process <stream>`, a child of its publish).
    annotateActiveSpan({ 'fleetgraph.subscription.deliveries': delivered });
  }

  function fail(group: Group, error: Error) {
    failed += group.members.size;
    for (const member of [...group.members]) {
      leave(member);
      member.listener.error(error);
    }
    closeGroup(group);
  }

  function openGroup(stream: string, subject: string, pattern: string, key: string): Group {
    const patternKey = `${stream}\u0000${pattern}`;
    const group: Group = {
      key,
      stream,
      subject,
      patternKey,
      lastSeq: 0,
      ready: Promise.resolve(),
      members: new Set(),
      buckets: new Map(),
    };
    feeds.open(group, pattern);
    group.ready.catch(() => closeGroup(group));
    return group;
  }

  function endCatchUp(member: Member) {
    const state = member.catchUp;
    if (!state) return;
    member.catchUp = undefined;
    state.active = false;
    catchingUp--;
    // Without a consumption yet, startCatchUp stops it when it arrives.
    consumers.stop(state.consumption);
  }

  /**
   * Replays the member's subject on a consumer of its own until it has caught up with its group:
   * from after its watermark, or (`lastPerSubject`) the last message of each subject it matches.
   */
  async function startCatchUp(member: Member, lastPerSubject = false): Promise<void> {
    if (member.closed) return;
    const state: CatchUp = { active: true };
    member.catchUp = state;
    catchingUp++;
    try {
      state.consumption = await consumers.consume(
        member.group.stream,
        member.group.subject,
        lastPerSubject ? { lastPerSubject } : member.watermark + 1,
        (message) => {
          messages++;
          if (!state.active || !deliverAlone(member, message)) return;
          if (member.group.lastSeq <= member.watermark) {
            endCatchUp(member);
            join(member);
          }
        },
        (error) => {
          if (!state.active) return;
          leave(member);
          member.listener.error(error);
        },
      );
    } catch (error) {
      if (state.active) endCatchUp(member);
      throw error;
    }
    if (!state.active) consumers.stop(state.consumption);
  }

  return {
    async watch({ stream, subject, pattern, from, execution, listener, accepts }) {
      if (closed) throw new Error('the subscription hub is closed');
      // Not even onto a subject already watched: nothing can be promised while the source is away.
      if (!source.available) throw new EventSourceUnavailableError();
      const key = `${stream}\u0000${subject}`;
      let group = groups.get(key);
      if (!group) {
        group = openGroup(stream, subject, pattern, key);
        groups.set(key, group);
      }
      const member: Member = { group, execution, listener, accepts, watermark: 0, closed: false };
      group.members.add(member);
      const watch: Watch = { close: () => leave(member) };
      try {
        await group.ready;
        // Closed meanwhile: by the client, by its group's feed failing, or by close().
        if (member.closed) return watch;
        if (from.kind === 'now') {
          member.watermark = group.lastSeq;
        } else if (from.kind === 'after') {
          // A cursor past what the group delivered: an event the group has not received yet (just
          // published, or the subject's last read before it), or no event at all. Only a cursor
          // past the stream's last sequence, read now, is refused: one no event has yet, whose
          // watch would skip every live event up to it. One past the subject's last but not the
          // stream's skips nothing: later events have later sequences (and a cursor that
          // Cluster.events keeps may be of an event the stream no longer holds).
          if (from.seq > group.lastSeq) {
            const last = await source.lastSeq(stream);
            if (from.seq > last) throw new CursorAheadError(from.seq, last);
            if (member.closed) return watch;
          }
          member.watermark = from.seq;
        } else if (isWildcard(subject)) {
          // The current state of every subject matched: the last message of each, then live.
          if (group.lastSeq > 0) {
            await startCatchUp(member, true);
            return watch;
          }
        } else {
          const last = await source.last(stream, subject);
          if (last) messages++;
          if (last && !deliverAlone(member, last)) return watch;
          if (member.closed) return watch;
        }
        if (group.lastSeq <= member.watermark) join(member);
        else await startCatchUp(member);
        return watch;
      } catch (error) {
        leave(member);
        throw error;
      }
    },

    stats() {
      let watches = 0;
      for (const group of groups.values()) watches += group.members.size;
      return {
        groups: groups.size,
        patternConsumers: feeds.patternConsumers,
        watches,
        catchingUp,
        executions,
        messages: messages + feeds.messages,
        malformed,
        failed,
      };
    },

    async close() {
      closed = true;
      for (const group of [...groups.values()]) for (const member of [...group.members]) leave(member);
      await consumers.settled();
    },
  };
}
