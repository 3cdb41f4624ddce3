import { hostname } from 'node:os';
import { isCloudError } from '@fleetgraph/clouds';
import {
  claimLease,
  createLeaseRunner,
  isLeaseFree,
  releaseLease,
  VersionConflictError,
  type LeaseRunner,
  type Logger,
} from '@fleetgraph/kit';
import { ulid } from 'ulid';
import { appendLog, imageLease, isInProgress, transition, type ImageEvent, type ImageRecord } from '../domain/image.js';
import { buildPhases } from './build-phases.js';
import { copyPhases } from './copy-phases.js';
import { noteImageJob } from './metrics.js';
import { CloudUnavailableError } from './errors.js';
import {
  DEFAULT_WORKER_OPTIONS,
  type Patch,
  type PhaseDeps,
  type StepResult,
  type WorkerOptions,
} from './image-phases.js';
import type { ImageClouds, ImageStatusEvents, ImageStore } from './ports.js';
import type { PublicImages } from './public-images.js';

export { BUILDER_CLUSTER_ID, BUILDER_POOL } from './build-phases.js';
export { DEFAULT_WORKER_OPTIONS, type WorkerOptions } from './image-phases.js';

/** The worker is stopping: the image is left for whoever comes next. */
class StoppedError extends Error {
  constructor() {
    super('the worker is stopping');
    this.name = 'StoppedError';
  }
}

/** One image being worked on: the stop signal, and what its phases work with. */
interface Run {
  signal: AbortSignal;
  deps: PhaseDeps;
}

/**
 * Copies and builds images in the background. An image's work is held through a lease in the
 * store (`leaseOwner`, `leaseUntil`, taken by compare-and-set and renewed with every write), by
 * kit's lease runner, so that any number of replicas share the work and each image is worked on
 * in one place. The work runs in phases (copy-phases.ts, build-phases.ts); each phase's outcome
 * is written before the next begins, so that a restart, or another replica once the lease has
 * expired, resumes where it stopped. Every cloud call is idempotent (client tokens, names derived
 * from the image id and attempt).
 */
export class ImageWorker {
  /** This process's name in leases. */
  readonly id = `${hostname()}:${process.pid}:${ulid()}`;
  private readonly options: WorkerOptions;
  private readonly runner: LeaseRunner<{ id: string }>;

  constructor(
    private readonly repo: ImageStore,
    private readonly clouds: ImageClouds,
    private readonly publicImages: Pick<PublicImages, 'ensure'>,
    private readonly events: ImageStatusEvents,
    private readonly log: Logger,
    options: Partial<WorkerOptions> = {},
  ) {
    this.options = { ...DEFAULT_WORKER_OPTIONS, ...options };
    this.runner = createLeaseRunner<{ id: string }, ImageRecord>({
      log,
      name: 'image',
      idKey: 'imageId',
      owner: this.id,
      sweepMs: this.options.sweepMs,
      concurrency: this.options.maxJobs,
      findWork: async (now) =>
        (await repo.inProgress()).filter((image) => isLeaseFree(imageLease.read(image), now.getTime())),
      claim: (item, owner) =>
        claimLease(repo, imageLease, item.id, {
          owner,
          leaseMs: this.options.leaseMs,
          attempts: 5,
          eligible: (image) => isInProgress(image.status),
          work: 'images',
        }),
      run: (image, { signal }) => this.work(image, signal),
      // Status events a crash may have lost.
      housekeeping: (now) => this.flushPendingEvents(now.getTime()),
    });
  }

  /** Resumes the work the store says is in progress, then sweeps for more every `sweepMs`. */
  start(): void {
    this.runner.start();
  }

  /**
   * Stops: jobs end at their next wait, releasing their leases so another replica (or the next
   * start) takes over at once.
   */
  stop(): Promise<void> {
    return this.runner.stop();
  }

  /** Images this process works on now. */
  get active(): string[] {
    return this.runner.active;
  }

  /** Works on the image now if this process has room and nobody else holds it; else a later sweep will. */
  kick(imageId: string): void {
    this.runner.take({ id: imageId });
  }

  /** Takes up work nobody holds, and publishes status events a crash may have lost. */
  sweep(): Promise<void> {
    return this.runner.sweep();
  }

  private async flushPendingEvents(now: number): Promise<void> {
    for (const image of await this.repo.withPendingEvents()) {
      const held = isInProgress(image.status) && !isLeaseFree(imageLease.read(image), now);
      // A fresh change is being published by whoever made it.
      if (!held && now - Date.parse(image.updatedAt) > 2_000) await this.events.flush(this.repo, image);
    }
  }

  /** Steps through a claimed image's phases until it is READY or FAILED, then lets go of the lease. */
  private async work(claimed: ImageRecord, signal: AbortSignal): Promise<void> {
    const run: Run = {
      signal,
      deps: {
        images: this.repo,
        clouds: this.clouds,
        publicImages: this.publicImages,
        options: this.options,
        log: this.log,
        sleep: (ms) => sleep(ms, signal),
      },
    };
    let image = claimed;
    const retries = { count: 0 };
    let conflicts = 0;
    try {
      while (isInProgress(image.status)) {
        try {
          image = await this.step(run, image, retries);
          conflicts = 0;
        } catch (error) {
          if (!(error instanceof VersionConflictError)) throw error;
          // Someone wrote the image meanwhile (a sweep publishing its event, say): go on if the lease is still ours.
          const current = await this.repo.get(image.id);
          if (!current || current.leaseOwner !== this.id || ++conflicts > 3) {
            this.log.info({ imageId: image.id }, 'image work taken over elsewhere');
            return;
          }
          image = current;
        }
      }
    } catch (error) {
      if (!(error instanceof StoppedError)) throw error;
    } finally {
      await releaseLease(this.repo, imageLease, image, this.id).catch((error: unknown) =>
        this.log.warn({ err: error, imageId: image.id }, 'could not release an image lease'),
      );
    }
  }

  /** One phase of the image's job, its result written; failures of the cloud are classified here. */
  private async step(run: Run, image: ImageRecord, retries: { count: number }): Promise<ImageRecord> {
    const cloud = this.clouds.get(image.cloud);
    if (!cloud) return this.fail(image, `cloud ${image.cloud} is not configured in this images service`);
    const job = image.job;
    if (!job) return this.fail(image, 'the image has no copy or build recorded');
    try {
      const result =
        job.kind === 'copy'
          ? await copyPhases[job.step](run.deps, { image, job, cloud })
          : await buildPhases[job.step](run.deps, { image, job, cloud });
      retries.count = 0;
      return await this.apply(run, image, result);
    } catch (error) {
      if (error instanceof VersionConflictError || error instanceof StoppedError) throw error;
      const transient = !isCloudError(error) || error.code === 'TRANSIENT' || error.code === 'RATE_LIMITED';
      if (transient && retries.count < this.options.transientRetries) {
        retries.count++;
        this.log.warn({ err: error, imageId: image.id, attempt: retries.count }, 'image step failed; retrying');
        return this.wait(run, image, Math.min(this.options.pollMs * 2 ** retries.count, 30_000));
      }
      const known = isCloudError(error) || error instanceof CloudUnavailableError;
      if (!known) this.log.error({ err: error, imageId: image.id }, 'image step failed');
      return this.fail(
        image,
        known ? (error as Error).message : `internal error: ${(error as Error).message ?? String(error)}`,
      );
    }
  }

  /** Writes what a phase decided. */
  private apply(run: Run, image: ImageRecord, result: StepResult): Promise<ImageRecord> {
    switch (result.kind) {
      case 'commit':
        return this.commit(image, result.patch, result.event, result.lines);
      case 'fail':
        return this.fail(image, result.message);
      case 'wait':
        return this.wait(run, image);
    }
  }

  /** Ends the attempt as FAILED with the cloud's message; a build first deletes its builder. */
  private fail(image: ImageRecord, message: string): Promise<ImageRecord> {
    const job = image.job;
    if (job?.kind === 'build' && job.builderMachineId && job.step !== 'cleanup') {
      return this.commit(
        image,
        { job: { ...job, step: 'cleanup', outcome: { status: 'FAILED', message } } },
        undefined,
        [`failed: ${message}`],
      );
    }
    return this.commit(image, { message }, { type: 'FAILED' }, [`failed: ${message}`]);
  }

  /** Writes a step's outcome (renewing the lease), and publishes the status change, if any. */
  private async commit(
    image: ImageRecord,
    patch: Patch,
    event?: ImageEvent,
    lines: string[] = [],
  ): Promise<ImageRecord> {
    const now = new Date();
    const next: ImageRecord = imageLease.write(
      { ...image, ...patch, updatedAt: now.toISOString() },
      { owner: this.id, until: now.getTime() + this.options.leaseMs },
    );
    if (lines.length > 0) {
      next.log = appendLog(image.log, ...lines);
      if (patch.message === undefined) next.message = lines.at(-1)!;
    }
    if (event) {
      const status = transition(image.status, event);
      if (status !== image.status) Object.assign(next, { status, statusSeq: image.statusSeq + 1, pendingEvent: true });
    }
    const saved = await this.repo.replace(next);
    if (saved.status !== image.status && (saved.status === 'READY' || saved.status === 'FAILED') && image.job)
      noteImageJob(image.job.kind, saved.status, image.job.startedAt, now);
    if (saved.pendingEvent) return this.events.flush(this.repo, saved);
    return saved;
  }

  /** Waits one poll interval, renewing the lease when half of it is gone. */
  private async wait(run: Run, image: ImageRecord, ms = this.options.pollMs): Promise<ImageRecord> {
    await sleep(ms, run.signal);
    return image.leaseUntil - Date.now() < this.options.leaseMs / 2 ? this.commit(image, {}) : image;
  }
}

/** Waits `ms`, or rejects with StoppedError as soon as the worker stops. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new StoppedError());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new StoppedError());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
