import { describe, expect, it } from 'vitest';
import { CollectionQueue } from './collection-queue.js';

const job = (id: string, clusterId: string) => ({ id, clusterId });

describe('CollectionQueue', () => {
  it.each([
    [
      'one per cluster, two in all',
      { total: 2, perCluster: 1 },
      [job('a1', 'a'), job('a2', 'a'), job('b1', 'b'), job('c1', 'c')],
      ['a1', 'b1'],
    ],
    [
      'two per cluster, three in all',
      { total: 3, perCluster: 2 },
      [job('a1', 'a'), job('a2', 'a'), job('a3', 'a'), job('b1', 'b')],
      ['a1', 'a2', 'b1'],
    ],
    [
      'a busy cluster does not hold up the others',
      { total: 4, perCluster: 1 },
      [job('a1', 'a'), job('a2', 'a'), job('a3', 'a'), job('b1', 'b')],
      ['a1', 'b1'],
    ],
    ['fewer jobs than slots', { total: 4, perCluster: 4 }, [job('a1', 'a')], ['a1']],
  ])('should start the oldest jobs that fit: %s', (_name, limits, jobs, started) => {
    const queue = new CollectionQueue({ ...limits, queued: 10 });
    for (const j of jobs) queue.enqueue(j);
    expect(queue.take().map((j) => j.id)).toEqual(started);
    expect(queue.take()).toEqual([]);
    expect([queue.runningCount, queue.queuedCount]).toEqual([started.length, jobs.length - started.length]);
  });

  it('should start the next job of a cluster once one of it finishes', () => {
    const queue = new CollectionQueue({ total: 2, perCluster: 1, queued: 10 });
    for (const j of [job('a1', 'a'), job('a2', 'a'), job('b1', 'b')]) queue.enqueue(j);
    expect(queue.take().map((j) => j.id)).toEqual(['a1', 'b1']);
    queue.finish('b1');
    expect(queue.take()).toEqual([]);
    queue.finish('a1');
    expect(queue.take().map((j) => j.id)).toEqual(['a2']);
    expect(queue.ids()).toEqual(['a2']);
  });

  it('should refuse a job beyond the queue limit and drain what waits', () => {
    const queue = new CollectionQueue({ total: 1, perCluster: 1, queued: 2 });
    queue.enqueue(job('a1', 'a'));
    queue.enqueue(job('a2', 'a'));
    expect(queue.full).toBe(true);
    expect(() => queue.enqueue(job('a3', 'a'))).toThrow(RangeError);
    queue.take();
    expect(queue.drain().map((j) => j.id)).toEqual(['a2']);
    expect(queue.ids()).toEqual(['a1']);
  });

  it('should refuse limits that are not positive integers', () => {
    expect(() => new CollectionQueue({ total: 0, perCluster: 1, queued: 1 })).toThrow(
      'limit total must be a positive integer',
    );
  });
});
