import { afterEach, describe, expect, it, vi } from 'vitest';
import { Batcher } from './batch.js';

afterEach(() => {
  vi.useRealTimers();
});

/** A run that answers each argument with itself doubled, and records what it was given. */
function doubling() {
  const runs: number[][] = [];
  const run = async (args: readonly number[]) => {
    runs.push([...args]);
    return args.map((n) => n * 2);
  };
  return { runs, run };
}

describe('Batcher', () => {
  it('makes calls of one key within the window as one run, answering each caller with its own result', async () => {
    vi.useFakeTimers();
    const batcher = new Batcher({ windowMs: 5, maxSize: 100 });
    const { runs, run } = doubling();
    const answers = Promise.all([1, 2, 3].map((n) => batcher.call('k', n, run)));
    await vi.advanceTimersByTimeAsync(4);
    expect(runs).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(await answers).toEqual([2, 4, 6]);
    expect(runs).toEqual([[1, 2, 3]]);
    expect(batcher.stats).toEqual({ calls: 3, runs: 1 });
  });

  it('keeps keys apart, and opens a new batch after the window closed', async () => {
    vi.useFakeTimers();
    const batcher = new Batcher({ windowMs: 5, maxSize: 100 });
    const { runs, run } = doubling();
    const first = Promise.all([batcher.call('a', 1, run), batcher.call('b', 2, run), batcher.call('a', 3, run)]);
    await vi.advanceTimersByTimeAsync(5);
    expect(await first).toEqual([2, 4, 6]);
    const later = batcher.call('a', 4, run);
    await vi.advanceTimersByTimeAsync(5);
    expect(await later).toBe(8);
    expect(runs).toEqual([[1, 3], [2], [4]]);
  });

  it('runs a full batch at once, and the calls after it in the next', async () => {
    vi.useFakeTimers();
    const batcher = new Batcher({ windowMs: 1000, maxSize: 2 });
    const { runs, run } = doubling();
    const full = Promise.all([batcher.call('k', 1, run), batcher.call('k', 2, run)]);
    expect(await full).toEqual([2, 4]);
    const next = batcher.call('k', 3, run);
    expect(runs).toEqual([[1, 2]]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await next).toBe(6);
    expect(runs).toEqual([[1, 2], [3]]);
  });

  it('fails every caller of a batch with the error of its run', async () => {
    vi.useFakeTimers();
    const batcher = new Batcher({ windowMs: 5, maxSize: 100 });
    const error = new Error('the cloud said no');
    const run = vi.fn(async () => {
      throw error;
    });
    const answers = [1, 2, 3].map((n) => batcher.call('k', n, run).catch((e: unknown) => e));
    await vi.advanceTimersByTimeAsync(5);
    expect(await Promise.all(answers)).toEqual([error, error, error]);
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('fails every caller when the run throws at once, or answers with the wrong number of results', async () => {
    const batcher = new Batcher({ windowMs: 1, maxSize: 100 });
    const throwing = () => {
      throw new Error('bad input');
    };
    const thrown = await Promise.allSettled([batcher.call('t', 1, throwing), batcher.call('t', 2, throwing)]);
    expect(thrown.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    const short = await Promise.allSettled([
      batcher.call('s', 1, async () => [1]),
      batcher.call('s', 2, async () => [1]),
    ]);
    expect(short.map((r) => r.status === 'rejected' && (r.reason as Error).message)).toEqual([
      'a batch of 2 calls was answered with 1 results',
      'a batch of 2 calls was answered with 1 results',
    ]);
  });

  it('makes each call alone and at once with a window of 0', async () => {
    const batcher = new Batcher({ windowMs: 0, maxSize: 100 });
    const { runs, run } = doubling();
    expect(await Promise.all([batcher.call('k', 1, run), batcher.call('k', 2, run)])).toEqual([2, 4]);
    expect(runs).toEqual([[1], [2]]);
  });

  it('fails the calls waiting when it closes, and refuses new ones', async () => {
    vi.useFakeTimers();
    const batcher = new Batcher({ windowMs: 5, maxSize: 100 });
    const { runs, run } = doubling();
    const waiting = batcher.call('k', 1, run).catch((e: unknown) => e);
    batcher.close(() => new Error('closed'));
    expect(await waiting).toEqual(new Error('closed'));
    await expect(batcher.call('k', 2, run)).rejects.toThrow('closed');
    await vi.advanceTimersByTimeAsync(10);
    expect(runs).toEqual([]);
  });
});
