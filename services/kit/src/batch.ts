/**
 * Calls of one kind that arrive within a short window, made as one: the first call opens a batch
 * under its key, the calls with the same key that follow join it, and when the window closes (or
 * the batch is full) `run` gets every call's argument at once and answers each, in order. A
 * failed run fails every call of its batch with its error. What must not be combined (another
 * region, other filters) is kept apart by the key; what belongs to another account or endpoint is
 * kept apart by having its own batcher (one per provider).
 *
 * The AWS adapter describes many clusters' machines, and looks up many clusters' VPCs, in one
 * EC2 call this way (`@fleetgraph/clouds`): a reconciler that steps many clusters at once asks
 * the same question of each. The store's `batchedGet` reads the gets of one turn in one query.
 */

export interface BatchOptions {
  /**
   * How long a batch stays open after its first call (ms). 0 makes every call alone, at once;
   * 'turn' keeps it open until the event loop's next turn (the calls of the I/O at hand).
   */
  windowMs: number | 'turn';
  /** Calls in one batch at most: a full batch is made at once, and the next call opens another. */
  maxSize: number;
}

/** What a batch makes: the answer of each argument, in the order of the arguments. */
export type BatchRun<A, R> = (args: readonly A[]) => Promise<readonly R[]>;

interface OpenBatch<A, R> {
  args: A[];
  waiters: { resolve: (result: R) => void; reject: (error: unknown) => void }[];
  run: BatchRun<A, R>;
  /** Stops the timer that closes it. */
  cancel(): void;
}

/** Counters, for tests and benchmarks. */
export interface BatchStats {
  /** Calls made through the batcher. */
  calls: number;
  /** Runs (each one call to the cloud, or one series of pages). */
  runs: number;
}

export class Batcher {
  readonly stats: BatchStats = { calls: 0, runs: 0 };
  private readonly open = new Map<string, OpenBatch<unknown, unknown>>();
  private closedBy: (() => unknown) | undefined;

  constructor(readonly options: BatchOptions) {}

  /**
   * `arg`'s answer, from a run of the batch open under `key` (opening one if none is). Every
   * call with the same key must pass an equivalent `run`: the batch runs the first call's.
   */
  call<A, R>(key: string, arg: A, run: BatchRun<A, R>): Promise<R> {
    if (this.closedBy) return Promise.reject(this.closedBy());
    this.stats.calls++;
    const { windowMs, maxSize } = this.options;
    if (windowMs !== 'turn' && (windowMs <= 0 || maxSize <= 1)) {
      this.stats.runs++;
      return run([arg]).then((results) => results[0]!);
    }
    let batch = this.open.get(key) as OpenBatch<A, R> | undefined;
    if (!batch) {
      const opened: OpenBatch<A, R> = { args: [], waiters: [], run, cancel: () => {} };
      const flush = () => this.flush(key, opened);
      if (windowMs === 'turn') {
        const immediate = setImmediate(flush);
        opened.cancel = () => clearImmediate(immediate);
      } else {
        const timer = setTimeout(flush, windowMs);
        opened.cancel = () => clearTimeout(timer);
      }
      this.open.set(key, opened as OpenBatch<unknown, unknown>);
      batch = opened;
    }
    const answer = new Promise<R>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    batch.args.push(arg);
    if (batch.args.length >= maxSize) this.flush(key, batch);
    return answer;
  }

  /**
   * Accepts no more calls, and fails those waiting in open batches with `error()` (a batch
   * already running answers its calls). Called when the provider closes.
   */
  close(error: () => unknown): void {
    this.closedBy = error;
    for (const batch of this.open.values()) {
      batch.cancel();
      for (const waiter of batch.waiters) waiter.reject(error());
    }
    this.open.clear();
  }

  private flush<A, R>(key: string, batch: OpenBatch<A, R>): void {
    if (this.open.get(key) === batch) this.open.delete(key);
    batch.cancel();
    this.stats.runs++;
    const { args, waiters } = batch;
    let running: Promise<readonly R[]>;
    try {
      running = batch.run(args);
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(
      (results) => {
        if (results.length !== waiters.length) {
          const error = new Error(`a batch of ${waiters.length} calls was answered with ${results.length} results`);
          for (const waiter of waiters) waiter.reject(error);
          return;
        }
        for (const [i, waiter] of waiters.entries()) waiter.resolve(results[i]!);
      },
      (error: unknown) => {
        for (const waiter of waiters) waiter.reject(error);
      },
    );
  }
}
