import type { Logger } from '@fleetgraph/kit';
import type { BuildJob, CopyJob, Image, ImageEvent, ImageRecord } from '../domain/image.js';
import type { ImageCloud, ImageClouds, ImageStore } from './ports.js';
import type { PublicImages } from './public-images.js';

/** How the worker runs; see the README for each setting. */
export interface WorkerOptions {
  /** How long a claim on an image's work lasts without renewal. @default 30_000 */
  leaseMs: number;
  /** Between two looks at the cloud while waiting. @default 2_000 */
  pollMs: number;
  /** Between two sweeps for work nobody holds (a crashed replica's, a restart's). @default 5_000 */
  sweepMs: number;
  /** Images worked on at once by this process. @default 8 */
  maxJobs: number;
  /** A copy attempt fails after this long. @default 2 hours */
  copyTimeoutMs: number;
  /** A build attempt fails after this long. @default 2 hours */
  buildTimeoutMs: number;
  /** One simulated Ansible task on the local cloud. @default 20_000 divided by LOCAL_CLOUD_SPEED */
  simulatedTaskMs: number;
  /** Transient cloud failures of one step retried before the attempt fails. @default 8 */
  transientRetries: number;
}

export const DEFAULT_WORKER_OPTIONS: WorkerOptions = {
  leaseMs: 30_000,
  pollMs: 2_000,
  sweepMs: 5_000,
  maxJobs: 8,
  copyTimeoutMs: 2 * 3600_000,
  buildTimeoutMs: 2 * 3600_000,
  simulatedTaskMs: 20_000,
  transientRetries: 8,
};

/** What a step changes on an image: anything but its identity and status (which events move). */
export type Patch = Partial<Omit<Image, 'id' | 'status' | 'statusSeq'>>;

/** What a phase decided; the worker writes it (renewing the lease) before the next step. */
export type StepResult =
  /** Write the patch, move the status on the event (if any), and add the lines to the image's log. */
  | { kind: 'commit'; patch: Patch; event?: ImageEvent; lines?: string[] }
  /** End the attempt as FAILED with this message (a build deletes its builder first). */
  | { kind: 'fail'; message: string }
  /** Look again after one poll interval. */
  | { kind: 'wait' };

/** What the phases work with: ports only. */
export interface PhaseDeps {
  images: Pick<ImageStore, 'findBySignature'>;
  clouds: Pick<ImageClouds, 'region'>;
  /** The out-of-the-box catalogue, asked for the base image of a build. */
  publicImages: Pick<PublicImages, 'ensure'>;
  options: WorkerOptions;
  log: Logger;
  /** Waits, or rejects when the worker stops. */
  sleep(ms: number): Promise<void>;
}

/** One step of an image's job: the image, its job (narrowed by kind) and the cloud it is in. */
export interface ImageScope<J> {
  image: ImageRecord;
  job: J;
  cloud: ImageCloud;
}

/**
 * A phase: `(deps, scope) => result`, as the orchestrator's. Cloud failures are thrown, and
 * classified by the worker.
 */
export type ImagePhase<J> = (deps: PhaseDeps, scope: ImageScope<J>) => Promise<StepResult>;

export const commit = (patch: Patch, event?: ImageEvent, lines?: string[]): StepResult => ({
  kind: 'commit',
  patch,
  event,
  lines,
});
export const fail = (message: string): StepResult => ({ kind: 'fail', message });
export const wait: StepResult = { kind: 'wait' };

/** Whether the attempt ran longer than `limitMs`. */
export function timedOut(job: CopyJob | BuildJob, limitMs: number, now = Date.now()): boolean {
  return now - Date.parse(job.startedAt) > limitMs;
}
