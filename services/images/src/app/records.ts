import { VersionConflictError } from '@fleetgraph/kit';
import { ulid } from 'ulid';
import {
  initialStatus,
  isInProgress,
  retryJob,
  transition,
  type Image,
  type ImageJob,
  type ImageRecord,
  type NewImageRecord,
} from '../domain/image.js';
import type { ImageStatusEvents, ImageStore } from './ports.js';

/** The fields of a new image that differ between kinds; the rest are derived. */
export type ImageDraft = Omit<Image, 'id' | 'status' | 'statusSeq' | 'log' | 'createdAt' | 'updatedAt'> & {
  log?: string[];
};

/** A new image record: READY when it needs no work, else in the first status of its job. */
export function newRecord(draft: ImageDraft, now = new Date()): NewImageRecord {
  const at = now.toISOString();
  return {
    ...draft,
    id: `img_${ulid()}`,
    status: initialStatus(draft.job ? draft.job.kind : 'ready'),
    log: draft.log ?? (draft.message ? [draft.message] : []),
    statusSeq: 1,
    createdAt: at,
    updatedAt: at,
    leaseOwner: null,
    leaseUntil: 0,
    pendingEvent: true,
  };
}

/**
 * Creating and reusing images, shared by requests and the catalogue: a create that loses the
 * race on (tenant, cloud, region, signature) returns the winner's image; a FAILED image asked
 * for again is retried; an image with work left is handed to the worker.
 */
export class ImageRecords {
  /** Set once the worker exists: hands an image with work left to it. */
  onWork: (imageId: string) => void = () => {};

  constructor(
    readonly repo: ImageStore,
    private readonly events: ImageStatusEvents,
  ) {}

  /** Inserts the image, or returns (and reuses) the one that has its signature already. */
  async createOrGet(record: NewImageRecord): Promise<ImageRecord> {
    const inserted = await this.repo.insert(record);
    if (inserted) {
      const flushed = await this.events.flush(this.repo, inserted);
      if (isInProgress(flushed.status)) this.onWork(flushed.id);
      return flushed;
    }
    const existing = await this.repo.findBySignature(record);
    if (!existing) throw new Error(`image ${record.signature} clashed on insert but cannot be found`);
    return this.reuse(existing);
  }

  /** An existing image asked for again: retried when FAILED, handed to the worker when in progress. */
  async reuse(image: ImageRecord, now = new Date()): Promise<ImageRecord> {
    if (image.status === 'FAILED' && image.job) return this.retry(image, image.job, now);
    if (isInProgress(image.status)) this.onWork(image.id);
    return image;
  }

  private async retry(image: ImageRecord, job: ImageJob, now: Date): Promise<ImageRecord> {
    const line = `retrying (attempt ${job.attempt + 1}) after: ${image.message ?? 'a failure'}`;
    try {
      const saved = await this.repo.replace({
        ...image,
        status: transition(image.status, { type: 'RETRY', kind: job.kind }),
        statusSeq: image.statusSeq + 1,
        job: retryJob(job, now),
        message: line,
        log: [...image.log, line],
        leaseOwner: null,
        leaseUntil: 0,
        pendingEvent: true,
        updatedAt: now.toISOString(),
      });
      const flushed = await this.events.flush(this.repo, saved);
      this.onWork(flushed.id);
      return flushed;
    } catch (error) {
      // Another request retried it first: theirs stands.
      if (!(error instanceof VersionConflictError)) throw error;
      const current = await this.repo.get(image.id);
      if (!current) throw error;
      if (isInProgress(current.status)) this.onWork(current.id);
      return current;
    }
  }
}
