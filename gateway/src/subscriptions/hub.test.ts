import { createLogger } from '@fleetgraph/kit/core';
import { describe, expect, it, vi } from 'vitest';
import { createHub, CursorAheadError, type Execution, type StartFrom } from './hub.js';
import type { EventSource, SourceMessage } from './source.js';

const log = createLogger('hub-test', 'silent');
const encoder = new TextEncoder();

/** Whether a subject matches a consumer's filter, which may hold `*` tokens. */
const matches = (filter: string, subject: string) => {
  const f = filter.split('.');
  const t = subject.split('.');
  return f.length === t.length && f.every((token, i) => token === '*' || token === t[i]);
};

/**
 * An event source whose consumers deliver only when the test says so, so that every interleaving
 * of a replaying watch and its subject's shared consumer can be written down.
 */
function manualSource() {
  /** `skip`: the consumer (by index) whose last-per-subject start passes over the entry. */
  const log: { seq: number; subject: string; n: number; skip?: number }[] = [];
  const consumers: {
    subject: string;
    next: number;
    /** Set until the consumer delivered the last message of each subject it matches. */
    lastPerSubject: boolean;
    onMessage: (m: SourceMessage) => void;
    onError: (error: Error) => void;
    open: boolean;
  }[] = [];
  let seq = 0;
  const source: EventSource & {
    publish(subject: string, n: number): number;
    /** Lets the consumer (by creation order) deliver up to `count` pending messages. */
    step(index: number, count?: number): void;
    /** Lets every consumer deliver everything pending. */
    drain(): void;
    /** Ends the consumer (by creation order) on its own. */
    fail(index: number): void;
    /** Filters of the open consumers. */
    filters(): string[];
    /** Runs after `last` read the subject and before it answers: the world moving on meanwhile. */
    whileReadingLast?: () => void;
  } = {
    publish(subject, n) {
      log.push({ seq: ++seq, subject, n });
      return seq;
    },
    step(index, count = Infinity) {
      const consumer = consumers[index]!;
      if (consumer.lastPerSubject) {
        // What JetStream's DeliverPolicy.LastPerSubject starts with: the last of each subject, in order.
        const last = new Map<string, number>();
        for (const entry of log) if (matches(consumer.subject, entry.subject)) last.set(entry.subject, entry.seq);
        const firsts = new Set(last.values());
        consumer.lastPerSubject = false;
        consumer.next = Math.min(...firsts, seq + 1);
        for (const entry of log) if (entry.seq >= consumer.next && !firsts.has(entry.seq)) entry.skip = index;
      }
      for (const entry of log) {
        if (count <= 0 || !consumer.open) break;
        if (entry.skip === index) continue;
        if (entry.seq < consumer.next || !matches(consumer.subject, entry.subject)) continue;
        consumer.next = entry.seq + 1;
        count--;
        consumer.onMessage({
          seq: entry.seq,
          subject: entry.subject,
          data: encoder.encode(JSON.stringify({ n: entry.n })),
        });
      }
    },
    drain() {
      for (let i = 0; i < consumers.length; i++) source.step(i);
    },
    fail(index) {
      const consumer = consumers[index]!;
      consumer.open = false;
      consumer.onError(new Error('consumer deleted'));
    },
    filters() {
      return consumers.filter((c) => c.open).map((c) => c.subject);
    },
    get consumers() {
      return consumers.filter((c) => c.open).length;
    },
    available: true,
    async last(_stream, subject) {
      const entry = log.findLast((e) => matches(subject, e.subject));
      source.whileReadingLast?.();
      return entry && { seq: entry.seq, subject: entry.subject, data: encoder.encode(JSON.stringify({ n: entry.n })) };
    },
    async lastSeq() {
      return seq;
    },
    async consume(_stream, subject, start, onMessage, onError) {
      const lastPerSubject = typeof start !== 'number';
      const consumer = { subject, next: lastPerSubject ? 1 : start, lastPerSubject, onMessage, onError, open: true };
      consumers.push(consumer);
      return {
        stop: async () => {
          consumer.open = false;
        },
      };
    },
  };
  return source;
}

/** A watch that records the `n` of every event it receives. */
function recorder(key = 'k', cursorField = false) {
  const received: number[] = [];
  const cursors: string[] = [];
  let completed = false;
  const execution: Execution = {
    key,
    cursorField,
    execute: (payload) => {
      if (cursorField) cursors.push(String(payload.cursor));
      return JSON.stringify(payload.n);
    },
    isComplete: (payload) => payload.n === -1,
  };
  return {
    received,
    cursors,
    get completed() {
      return completed;
    },
    failures: [] as Error[],
    request(subject: string, from: StartFrom) {
      return {
        stream: 'S',
        subject,
        pattern: subject.split('.').length === 2 ? 's.*' : subject,
        from,
        execution,
        listener: {
          next: (result: string) => received.push(JSON.parse(result) as number),
          complete: () => (completed = true),
          error: (e: Error) => this.failures.push(e),
        },
      };
    },
  };
}

describe('subscription hub', () => {
  it('should give watchers of one subject one consumer and one execution per event', async () => {
    const source = manualSource();
    const hub = createHub(source, log);
    const a = recorder();
    const b = recorder();
    await hub.watch(a.request('s', { kind: 'now' }));
    await hub.watch(b.request('s', { kind: 'now' }));
    source.publish('s', 1);
    source.publish('s', 2);
    source.drain();
    expect([a.received, b.received]).toEqual([
      [1, 2],
      [1, 2],
    ]);
    expect(source.consumers).toBe(1);
    expect(hub.stats()).toMatchObject({ groups: 1, watches: 2, executions: 2, messages: 2 });
  });

  it('should replay behind the group on its own consumer, then join it without gap or duplicate', async () => {
    const source = manualSource();
    const hub = createHub(source, log);
    for (let n = 1; n <= 3; n++) source.publish('s', n);
    const live = recorder();
    await hub.watch(live.request('s', { kind: 'now' }));
    source.publish('s', 4);
    source.publish('s', 5);
    source.step(0, 1); // the group delivers 4: it is ahead of a cursor at 1

    const resumed = recorder();
    await hub.watch(resumed.request('s', { kind: 'after', seq: 1 }));
    expect(source.consumers).toBe(2);
    source.publish('s', 6);
    source.step(1, 2); // the replay delivers 2, 3: still behind the group (4)
    source.step(0); // the group delivers 5, 6: not to the replaying watch
    source.step(1); // the replay delivers 4, 5, 6 and joins when it reaches the group
    expect(source.consumers).toBe(1);
    source.publish('s', 7);
    source.drain();
    expect(resumed.received).toEqual([2, 3, 4, 5, 6, 7]);
    expect(live.received).toEqual([4, 5, 6, 7]);
    expect(hub.stats()).toMatchObject({ catchingUp: 0, watches: 2 });
  });

  it('should join at once when a cursor is at or past what the group delivered', async () => {
    const source = manualSource();
    const hub = createHub(source, log);
    const seq = source.publish('s', 1);
    const watcher = recorder();
    await hub.watch(watcher.request('s', { kind: 'after', seq }));
    expect(source.consumers).toBe(1);
    source.publish('s', 2);
    source.drain();
    expect(watcher.received).toEqual([2]);
  });

  it('should refuse a cursor past the last event, and take one of an event the group has not delivered yet', async () => {
    const source = manualSource();
    const hub = createHub(source, log);
    const live = recorder();
    await hub.watch(live.request('s', { kind: 'now' }));
    const published = source.publish('s', 1);
    // Past the stream's end: refused, and nothing is left behind.
    const ahead = recorder();
    await expect(hub.watch(ahead.request('s', { kind: 'after', seq: published + 1 }))).rejects.toEqual(
      new CursorAheadError(published + 1, published),
    );
    await expect(hub.watch(ahead.request('s', { kind: 'after', seq: 9_999_999_999 }))).rejects.toBeInstanceOf(
      CursorAheadError,
    );
    expect(hub.stats()).toMatchObject({ groups: 1, watches: 1 });
    // The cursor of the event just published, which the group has not delivered yet: taken.
    const resumed = recorder();
    await hub.watch(resumed.request('s', { kind: 'after', seq: published }));
    // Past the subject's last event but not the stream's: taken, nothing is skipped.
    const other = source.publish('t', 2);
    const elsewhere = recorder();
    await hub.watch(elsewhere.request('s', { kind: 'after', seq: other }));
    source.publish('s', 3);
    source.drain();
    expect(live.received).toEqual([1, 3]);
    expect(resumed.received).toEqual([3]);
    expect(elsewhere.received).toEqual([3]);
    // On a subject nobody watches yet, likewise: its group reads the subject's last on opening.
    const fresh = recorder();
    await expect(
      hub.watch(fresh.request('u', { kind: 'after', seq: source.publish('u', 4) + 1 })),
    ).rejects.toBeInstanceOf(CursorAheadError);
    expect(hub.stats()).toMatchObject({ groups: 1, watches: 3 });
  });

  it('should deliver the last event first, then catch up if the group moved on meanwhile', async () => {
    const source = manualSource();
    const hub = createHub(source, log);
    const other = recorder();
    await hub.watch(other.request('s', { kind: 'now' }));
    source.publish('s', 1);
    source.publish('s', 2);
    source.drain();
    source.whileReadingLast = () => {
      source.publish('s', 3);
      source.step(0);
    };
    const last = recorder();
    await hub.watch(last.request('s', { kind: 'last' }));
    expect(source.consumers).toBe(2);
    source.whileReadingLast = undefined;
    source.step(1);
    await vi.waitFor(() => expect(source.consumers).toBe(1));
    source.publish('s', 4);
    source.drain();
    expect(last.received).toEqual([2, 3, 4]);
    expect(other.received).toEqual([1, 2, 3, 4]);
  });

  it('should fill the cursor field with the sequence and complete on the condition', async () => {
    const source = manualSource();
    const hub = createHub(source, log);
    const watcher = recorder('k', true);
    await hub.watch(watcher.request('s', { kind: 'now' }));
    const seqs = [source.publish('s', 1), source.publish('s', -1), source.publish('s', 3)];
    source.drain();
    expect(watcher.received).toEqual([1, -1]);
    expect(watcher.cursors).toEqual([String(seqs[0]), String(seqs[1])]);
    expect(watcher.completed).toBe(true);
    await vi.waitFor(() => expect(source.consumers).toBe(0));
    expect(hub.stats()).toMatchObject({ groups: 0, watches: 0 });
  });

  it('should stop every consumer when the last watch of a subject closes', async () => {
    const source = manualSource();
    const hub = createHub(source, log);
    for (let n = 1; n <= 3; n++) source.publish('s', n);
    const live = await hub.watch(recorder().request('s', { kind: 'now' }));
    source.publish('s', 4);
    source.step(0);
    const replaying = await hub.watch(recorder().request('s', { kind: 'after', seq: 0 }));
    expect(source.consumers).toBe(2);
    replaying.close();
    live.close();
    replaying.close();
    await hub.close();
    expect(source.consumers).toBe(0);
    expect(hub.stats()).toMatchObject({ groups: 0, watches: 0, catchingUp: 0 });
  });
  it('should read the subjects it starts watching from the threshold on through one consumer of their pattern', async () => {
    const source = manualSource();
    const hub = createHub(source, log, { patternConsumerAt: 2 });
    const watchers = [1, 2, 3, 4].map(() => recorder());
    const watches = [];
    for (const [i, w] of watchers.entries()) watches.push(await hub.watch(w.request(`s.${i + 1}`, { kind: 'now' })));
    expect(source.filters()).toEqual(['s.1', 's.2', 's.*']);
    expect(hub.stats()).toMatchObject({ groups: 4, patternConsumers: 1, watches: 4 });
    for (let i = 1; i <= 5; i++) source.publish(`s.${i}`, i * 10);
    source.publish('s.3', 31);
    source.drain();
    expect(watchers.map((w) => w.received)).toEqual([[10], [20], [30, 31], [40]]);

    watches[2]!.close();
    expect(source.filters()).toEqual(['s.1', 's.2', 's.*']);
    watches[3]!.close();
    await vi.waitFor(() => expect(source.filters()).toEqual(['s.1', 's.2']));
    expect(hub.stats()).toMatchObject({ groups: 2, patternConsumers: 0 });
  });

  it('should resume a cursor on a subject read through its pattern without gap or duplicate', async () => {
    const source = manualSource();
    const hub = createHub(source, log, { patternConsumerAt: 0 });
    const first = source.publish('s.1', 1);
    source.publish('s.2', 100);
    source.publish('s.1', 2);
    const live = recorder();
    await hub.watch(live.request('s.1', { kind: 'now' }));
    source.publish('s.1', 3);
    source.step(0); // the pattern consumer delivers 3
    const resumed = recorder();
    await hub.watch(resumed.request('s.1', { kind: 'after', seq: first }));
    expect(source.filters()).toEqual(['s.*', 's.1']);
    source.publish('s.1', 4);
    source.step(1, 1); // the replay delivers 2: behind the group
    source.step(0); // the group delivers 4, not to the replaying watch
    source.step(1); // the replay delivers 3, 4 and joins
    await vi.waitFor(() => expect(source.filters()).toEqual(['s.*']));
    source.publish('s.1', 5);
    source.drain();
    expect(resumed.received).toEqual([2, 3, 4, 5]);
    expect(live.received).toEqual([3, 4, 5]);
  });

  it('should start a subject read through its pattern at its last message, even one the pattern consumer delivers late', async () => {
    const source = manualSource();
    const hub = createHub(source, log, { patternConsumerAt: 0 });
    const other = recorder();
    await hub.watch(other.request('s.2', { kind: 'now' }));
    source.publish('s.1', 1); // stored, not yet delivered by the pattern consumer
    const watcher = recorder();
    await hub.watch(watcher.request('s.1', { kind: 'last' }));
    source.publish('s.1', 2);
    source.drain();
    expect(watcher.received).toEqual([1, 2]);
  });

  it('should end every watch on a pattern consumer that fails, and read the pattern again afterwards', async () => {
    const source = manualSource();
    const hub = createHub(source, log, { patternConsumerAt: 0 });
    const a = recorder();
    const b = recorder();
    await hub.watch(a.request('s.1', { kind: 'now' }));
    await hub.watch(b.request('s.2', { kind: 'now' }));
    source.fail(0);
    expect([a.failures.length, b.failures.length]).toEqual([1, 1]);
    expect(hub.stats()).toMatchObject({ groups: 0, watches: 0, patternConsumers: 0 });
    const c = recorder();
    await hub.watch(c.request('s.1', { kind: 'now' }));
    source.publish('s.1', 7);
    source.drain();
    expect(c.received).toEqual([7]);
    expect(a.received).toEqual([]);
  });
  it('should leave no consumer behind when a watch is closed while its group starts (its feed failing, or the hub closing)', async () => {
    const source = manualSource();
    const hub = createHub(source, log, { patternConsumerAt: 0 });
    source.publish('s.1', 1);
    source.publish('s.1', 2);
    const failed = recorder();
    // The pattern consumer fails while the group reads its subject's last message.
    source.whileReadingLast = () => source.fail(0);
    await hub.watch(failed.request('s.1', { kind: 'after', seq: 1 }));
    source.whileReadingLast = undefined;
    expect(failed.failures).toHaveLength(1);
    expect(source.consumers).toBe(0);
    expect(hub.stats()).toMatchObject({ groups: 0, watches: 0, catchingUp: 0, patternConsumers: 0 });

    let closing: Promise<void> | undefined;
    source.whileReadingLast = () => {
      closing = hub.close();
    };
    await hub.watch(recorder().request('s.1', { kind: 'after', seq: 1 }));
    await closing;
    expect(source.consumers).toBe(0);
    expect(hub.stats()).toMatchObject({ groups: 0, watches: 0, catchingUp: 0 });
  });
  it("should start a wildcard watch with the last event of each subject, then every change, on the subject's group", async () => {
    const source = manualSource();
    const hub = createHub(source, log, { patternConsumerAt: 1 });
    source.publish('s.a', 1);
    source.publish('s.b', 2);
    source.publish('s.a', 3);
    const early = recorder();
    await hub.watch(early.request('s.*', { kind: 'now' }));
    const fleet = recorder();
    const watching = hub.watch(fleet.request('s.*', { kind: 'last' }));
    await watching;
    // The group's consumer and the replay of the last of each subject: never a pattern feed.
    expect(hub.stats()).toMatchObject({ patternConsumers: 0, catchingUp: 1 });
    source.publish('s.b', 4);
    source.step(0); // the group delivers 4: not to the replaying watch
    source.step(1); // the replay: the last of s.b before 4 is passed over; 3 (s.a) then 4, and it joins
    expect(hub.stats()).toMatchObject({ catchingUp: 0 });
    source.publish('s.c', 5);
    source.drain();
    expect(fleet.received).toEqual([3, 4, 5]);
    expect(early.received).toEqual([4, 5]);
    expect(source.consumers).toBe(1);
  });

  it('should deliver to each watch only the events it accepts, the others sharing one execution', async () => {
    const source = manualSource();
    const hub = createHub(source, log);
    const odd = recorder();
    const all = recorder();
    await hub.watch({ ...odd.request('s.*', { kind: 'now' }), accepts: (payload) => Number(payload.n) % 2 === 1 });
    await hub.watch(all.request('s.*', { kind: 'now' }));
    for (let n = 1; n <= 4; n++) source.publish(`s.${n}`, n);
    source.drain();
    expect(odd.received).toEqual([1, 3]);
    expect(all.received).toEqual([1, 2, 3, 4]);
    expect(hub.stats()).toMatchObject({ executions: 4 });
    // A replay passes over what it does not accept too.
    const late = recorder();
    await hub.watch({ ...late.request('s.*', { kind: 'last' }), accepts: (payload) => Number(payload.n) > 2 });
    source.drain();
    source.publish('s.9', 9);
    source.drain();
    expect(late.received).toEqual([3, 4, 9]);
  });
});
