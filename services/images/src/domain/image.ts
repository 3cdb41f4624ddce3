import { leaseFields, type StoredDoc } from '@fleetgraph/kit';
import type { CloudType } from '@fleetgraph/schema';
import type { ImageDefinition } from './signature.js';

export type { CloudType };

export const ImageStatus = {
  PENDING: 'PENDING',
  BUILDING: 'BUILDING',
  COPYING: 'COPYING',
  READY: 'READY',
  FAILED: 'FAILED',
} as const;
export type ImageStatus = (typeof ImageStatus)[keyof typeof ImageStatus];

export const ImageSource = {
  OUT_OF_BOX: 'OUT_OF_BOX',
  CUSTOMIZED: 'CUSTOMIZED',
  BRING_YOUR_OWN: 'BRING_YOUR_OWN',
} as const;
export type ImageSource = (typeof ImageSource)[keyof typeof ImageSource];

/** Statuses in which work remains to be done by a worker. */
export const IN_PROGRESS: readonly ImageStatus[] = ['PENDING', 'COPYING', 'BUILDING'];
export const isInProgress = (status: ImageStatus) => IN_PROGRESS.includes(status);

/** Copying an out-of-the-box image into a region that lacks it. */
export interface CopyJob {
  kind: 'copy';
  step: 'start' | 'wait';
  /** 1 for the first try; a retry after FAILED increments it (and so the client token). */
  attempt: number;
  /** Where it is copied from; found by the worker when null. */
  source: { region: string; imageId: string } | null;
  /** The copy in the target region, once started. */
  cloudImageId: string | null;
  /** ISO-8601: when this attempt started, for its timeout. */
  startedAt: string;
}

/**
 * What a build is waiting for or doing; persisted after each step so that another replica (or a
 * restart) resumes it.
 */
export type BuildStep = 'base' | 'launch' | 'boot' | 'configure' | 'capture' | 'wait-image' | 'cleanup';

/** Building a customised image on a builder machine. */
export interface BuildJob {
  kind: 'build';
  step: BuildStep;
  attempt: number;
  /** The out-of-the-box image it starts from (catalogue key), or the bring-your-own image ref. */
  base: { kind: 'catalogue'; key: string } | { kind: 'ref'; imageRef: string };
  /** Whether Kubernetes is installed on the builder (false when the base has it already: skipK8sInstall). */
  installKubernetes: boolean;
  /** Whether the base out-of-the-box image was asked for (and so a FAILED one retried) in this attempt. */
  baseRequested: boolean;
  /** The base image's id in the region, once known. */
  baseImageId: string | null;
  builderMachineId: string | null;
  /** Simulated configuration: how many log lines were written. */
  progress: number;
  cloudImageId: string | null;
  /** Set when the outcome is known and only the builder's cleanup remains. */
  outcome: { status: 'READY'; artifactId: string } | { status: 'FAILED'; message: string } | null;
  startedAt: string;
}

export type ImageJob = CopyJob | BuildJob;

/** An image as the service keeps it. */
export interface Image {
  id: string;
  /** `public` for the out-of-the-box catalogue, else the tenant that owns it. */
  tenantId: string;
  /** The project that first asked for it (`public` for the catalogue); images are shared tenant-wide. */
  projectId: string;
  signature: string;
  os: string;
  osVersion: string;
  kubernetesVersion: string | null;
  cloud: CloudType;
  region: string;
  source: ImageSource;
  status: ImageStatus;
  /** AMI id, Azure image id or local image id, once known. */
  artifactId: string | null;
  ansibleRoles: string[];
  description: string | null;
  /** The latest progress line; why it FAILED, in the cloud's words. */
  message: string | null;
  /** The last lines of its copy or build log. */
  log: string[];
  definition: ImageDefinition;
  job: ImageJob | null;
  /** Increments on every status change; with the id, the event's message id. */
  statusSeq: number;
  createdAt: string;
  updatedAt: string;
}

/** How many log lines an image keeps. */
export const LOG_LINES = 200;

export function appendLog(log: readonly string[], ...lines: string[]): string[] {
  return [...log, ...lines].slice(-LOG_LINES);
}

/** What moves an image from one status to another. */
export type ImageEvent =
  | { type: 'COPY_STARTED' }
  | { type: 'BUILD_STARTED' }
  | { type: 'AVAILABLE' }
  | { type: 'FAILED' }
  /** A resolve found it FAILED: try again, as a copy or as a build. */
  | { type: 'RETRY'; kind: ImageJob['kind'] };

const TRANSITIONS: Record<ImageStatus, Partial<Record<ImageEvent['type'], ImageStatus>>> = {
  PENDING: { COPY_STARTED: 'COPYING', BUILD_STARTED: 'BUILDING', AVAILABLE: 'READY', FAILED: 'FAILED' },
  COPYING: { COPY_STARTED: 'COPYING', AVAILABLE: 'READY', FAILED: 'FAILED' },
  BUILDING: { BUILD_STARTED: 'BUILDING', AVAILABLE: 'READY', FAILED: 'FAILED' },
  READY: {},
  FAILED: { RETRY: 'PENDING' },
};

export class InvalidTransitionError extends Error {
  constructor(
    readonly from: ImageStatus,
    readonly event: ImageEvent['type'],
  ) {
    super(`an image cannot go from ${from} on ${event}`);
    this.name = 'InvalidTransitionError';
  }
}

/** The status after an event. @throws InvalidTransitionError when the event does not apply (READY is final). */
export function transition(from: ImageStatus, event: ImageEvent): ImageStatus {
  if (event.type === 'RETRY' && from === 'FAILED') return event.kind === 'copy' ? 'COPYING' : 'PENDING';
  const to = TRANSITIONS[from][event.type];
  if (!to) throw new InvalidTransitionError(from, event.type);
  return to;
}

/** The status a new image starts in. */
export function initialStatus(work: 'ready' | ImageJob['kind']): ImageStatus {
  return work === 'ready' ? 'READY' : work === 'copy' ? 'COPYING' : 'PENDING';
}

/** The job of a retry: the same work from its first step, with the next attempt number. */
export function retryJob(job: ImageJob, now: Date): ImageJob {
  const startedAt = now.toISOString();
  if (job.kind === 'copy') return { ...job, step: 'start', attempt: job.attempt + 1, cloudImageId: null, startedAt };
  return {
    ...job,
    step: 'base',
    attempt: job.attempt + 1,
    baseRequested: false,
    baseImageId: null,
    builderMachineId: null,
    progress: 0,
    cloudImageId: null,
    outcome: null,
    startedAt,
  };
}

/**
 * An image as stored: the domain image plus the store's `version` (compare-and-set) and the
 * bookkeeping of the work on it.
 */
export interface ImageRecord extends Image, StoredDoc {
  /** The worker that holds the image's work, or null. */
  leaseOwner: string | null;
  /** Epoch ms until which `leaseOwner` holds it (0 when nobody does); another worker may take it over afterwards. */
  leaseUntil: number;
  /** A status change whose event may not have been published yet. */
  pendingEvent: boolean;
}

export type NewImageRecord = Omit<ImageRecord, 'version'>;

/** Where an image keeps its lease (the field names and format images have always been stored with). */
export const imageLease = leaseFields<ImageRecord>({
  owner: 'leaseOwner',
  until: 'leaseUntil',
  time: 'epoch-ms',
  free: 0,
});
