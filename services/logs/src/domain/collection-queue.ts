/** How many collections may run and wait. */
export interface CollectionLimits {
  /** Collections running at once in this process. */
  total: number;
  /** Collections running at once for one cluster. */
  perCluster: number;
  /** Requests waiting for a free slot; more are refused. */
  queued: number;
}

export interface QueuedJob {
  id: string;
  clusterId: string;
}

/**
 * A first-in, first-out queue of collections under two limits: at most `total` running, and at
 * most `perCluster` for any one cluster. `take` starts the oldest jobs that fit, skipping those of
 * clusters at their limit, so that one busy cluster does not hold up the others.
 */
export class CollectionQueue<J extends QueuedJob> {
  private readonly waiting: J[] = [];
  private readonly running = new Map<string, J>();
  private readonly perCluster = new Map<string, number>();

  constructor(readonly limits: CollectionLimits) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`limit ${name} must be a positive integer`);
    }
  }

  /** Whether another request may wait. */
  get full(): boolean {
    return this.waiting.length >= this.limits.queued;
  }

  get queuedCount(): number {
    return this.waiting.length;
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** Ids of every job waiting or running. */
  ids(): string[] {
    return [...this.waiting.map((j) => j.id), ...this.running.keys()];
  }

  /** Adds a job at the end. @throws RangeError when the queue is full */
  enqueue(job: J): void {
    if (this.full) throw new RangeError('the collection queue is full');
    this.waiting.push(job);
  }

  /** Removes and returns the jobs that may start now, marking them running. */
  take(): J[] {
    const started: J[] = [];
    for (let i = 0; i < this.waiting.length && this.running.size < this.limits.total; ) {
      const job = this.waiting[i]!;
      if ((this.perCluster.get(job.clusterId) ?? 0) >= this.limits.perCluster) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.running.set(job.id, job);
      this.perCluster.set(job.clusterId, (this.perCluster.get(job.clusterId) ?? 0) + 1);
      started.push(job);
    }
    return started;
  }

  /** Puts a job `take` started back at the head of the queue (it could not start after all). */
  putBack(id: string): void {
    const job = this.running.get(id);
    if (!job) return;
    this.finish(id);
    this.waiting.unshift(job);
  }

  /** Marks a running job done (or drops a waiting one), freeing its slot. */
  finish(id: string): void {
    const job = this.running.get(id);
    if (job) {
      this.running.delete(id);
      const left = (this.perCluster.get(job.clusterId) ?? 1) - 1;
      if (left > 0) this.perCluster.set(job.clusterId, left);
      else this.perCluster.delete(job.clusterId);
      return;
    }
    const index = this.waiting.findIndex((j) => j.id === id);
    if (index >= 0) this.waiting.splice(index, 1);
  }

  /** Empties the queue, returning the jobs that were waiting. */
  drain(): J[] {
    return this.waiting.splice(0);
  }
}
