import { hostname } from 'node:os';
import { isCloudError, type CloudImage } from '@fleetgraph/clouds';
import { VersionConflictError, type Logger } from '@fleetgraph/kit';
import { ulid } from 'ulid';
import type { CloudSettings, Clouds } from '../adapters/clouds.js';
import type { ImageEvents } from '../adapters/image.events.js';
import type { ImageRecord, ImageRepository } from '../adapters/image.repo.js';
import { builderUserData, simulatedBuildLog } from '../domain/build-script.js';
import { CATALOGUE, catalogueSearchTags, configuredImage, ImageTagKeys, pickCatalogueImage, PUBLIC_TENANT, type CatalogueEntry } from '../domain/catalogue.js';
import { appendLog, isInProgress, transition, type BuildJob, type CopyJob, type Image, type ImageEvent } from '../domain/image.js';
import { CloudUnavailableError, ImageRequestError } from './errors.js';
import { catalogueDefinition, type PublicImages } from './public-images.js';

/** The cluster id builder machines are tagged with, so that they can be found (and counted) as one group. */
export const BUILDER_CLUSTER_ID = 'fleetgraph-image-builder';
export const BUILDER_POOL = 'image-builder';

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

/** The worker is stopping: the image is left for whoever comes next. */
class StoppedError extends Error {
  constructor() {
    super('the worker is stopping');
    this.name = 'StoppedError';
  }
}

type Patch = Partial<Omit<Image, 'id' | 'status' | 'statusSeq'>>;

/**
 * Copies and builds images in the background. An image's work is held through a lease in the
 * store (`leaseOwner`, `leaseUntil`, taken and renewed by compare-and-set), so that any number
 * of replicas share the work and each image is worked on in one place; each step's outcome is
 * written before the next begins, so that a restart, or another replica once the lease has
 * expired, resumes where it stopped. Every cloud call is idempotent (client tokens, names
 * derived from the image id and attempt).
 */
export class ImageWorker {
  /** This process's name in leases. */
  readonly id = `${hostname()}:${process.pid}:${ulid()}`;
  private readonly running = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();
  private sweeper: NodeJS.Timeout | null = null;
  private readonly options: WorkerOptions;

  constructor(
    private readonly repo: ImageRepository,
    private readonly clouds: Clouds,
    private readonly publicImages: PublicImages,
    private readonly events: ImageEvents,
    private readonly log: Logger,
    options: Partial<WorkerOptions> = {},
  ) {
    this.options = { ...DEFAULT_WORKER_OPTIONS, ...options };
  }

  /** Resumes the work the store says is in progress, then sweeps for more every `sweepMs`. */
  start(): void {
    const sweep = () => void this.sweep().catch((error: unknown) => this.log.error({ err: error }, 'image sweep failed'));
    sweep();
    this.sweeper = setInterval(sweep, this.options.sweepMs);
    this.sweeper.unref();
  }

  /** Stops: jobs end at their next wait, releasing their leases so another replica (or the next start) takes over at once. */
  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.stopping.abort();
    await Promise.allSettled(this.running.values());
  }

  /** Images this process works on now. */
  get active(): string[] {
    return [...this.running.keys()];
  }

  /** Works on the image now if this process has room and nobody else holds it; else a later sweep will. */
  kick(imageId: string): void {
    if (this.stopping.signal.aborted || this.running.has(imageId) || this.running.size >= this.options.maxJobs) return;
    const run = this.run(imageId)
      .catch((error: unknown) => this.log.error({ err: error, imageId }, 'image work failed unexpectedly'))
      .finally(() => this.running.delete(imageId));
    this.running.set(imageId, run);
  }

  /** Takes up work nobody holds, and publishes status events a crash may have lost. */
  async sweep(): Promise<void> {
    const now = Date.now();
    for (const image of await this.repo.inProgress()) {
      if (!image.leaseOwner || image.leaseUntil <= now) this.kick(image.id);
    }
    for (const image of await this.repo.withPendingEvents()) {
      const held = isInProgress(image.status) && image.leaseOwner !== null && image.leaseUntil > now;
      // A fresh change is being published by whoever made it.
      if (!held && now - Date.parse(image.updatedAt) > 2_000) await this.events.flush(this.repo, image);
    }
  }

  private async claim(imageId: string): Promise<ImageRecord | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const image = await this.repo.get(imageId);
      if (!image || !isInProgress(image.status)) return null;
      if (image.leaseOwner && image.leaseOwner !== this.id && image.leaseUntil > Date.now()) return null;
      try {
        return await this.repo.replace({ ...image, leaseOwner: this.id, leaseUntil: Date.now() + this.options.leaseMs });
      } catch (error) {
        if (!(error instanceof VersionConflictError)) throw error;
      }
    }
    return null;
  }

  private async run(imageId: string): Promise<void> {
    let image = await this.claim(imageId);
    if (!image) return;
    const retries = { count: 0 };
    let conflicts = 0;
    try {
      while (isInProgress(image.status)) {
        try {
          image = await this.step(image, retries);
          conflicts = 0;
        } catch (error) {
          if (!(error instanceof VersionConflictError)) throw error;
          // Someone wrote the image meanwhile (a sweep publishing its event, say): go on if the lease is still ours.
          const current = await this.repo.get(imageId);
          if (!current || current.leaseOwner !== this.id || ++conflicts > 3) {
            this.log.info({ imageId }, 'image work taken over elsewhere');
            return;
          }
          image = current;
        }
      }
    } catch (error) {
      if (!(error instanceof StoppedError)) throw error;
    } finally {
      await this.release(image);
    }
  }

  private async release(image: ImageRecord): Promise<void> {
    if (image.leaseOwner !== this.id) return;
    try {
      await this.repo.replace({ ...image, leaseOwner: null, leaseUntil: 0 });
    } catch (error) {
      if (!(error instanceof VersionConflictError)) this.log.warn({ err: error, imageId: image.id }, 'could not release an image lease');
    }
  }

  /** Writes a step's outcome (renewing the lease), and publishes the status change, if any. */
  private async commit(image: ImageRecord, patch: Patch, event?: ImageEvent, lines: string[] = []): Promise<ImageRecord> {
    const now = new Date();
    const next: ImageRecord = { ...image, ...patch, updatedAt: now.toISOString(), leaseOwner: this.id, leaseUntil: now.getTime() + this.options.leaseMs };
    if (lines.length > 0) {
      next.log = appendLog(image.log, ...lines);
      if (patch.message === undefined) next.message = lines.at(-1)!;
    }
    if (event) {
      const status = transition(image.status, event);
      if (status !== image.status) Object.assign(next, { status, statusSeq: image.statusSeq + 1, pendingEvent: true });
    }
    const saved = await this.repo.replace(next);
    if (saved.pendingEvent) return this.events.flush(this.repo, saved);
    return saved;
  }

  /** Waits one poll interval, renewing the lease when half of it is gone. */
  private async wait(image: ImageRecord, ms = this.options.pollMs): Promise<ImageRecord> {
    await this.sleep(ms);
    return image.leaseUntil - Date.now() < this.options.leaseMs / 2 ? this.commit(image, {}) : image;
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.stopping.signal;
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

  /** One step of the image's job; failures of the cloud are classified here. */
  private async step(image: ImageRecord, retries: { count: number }): Promise<ImageRecord> {
    const cloud = this.clouds.get(image.cloud);
    if (!cloud) return this.fail(image, `cloud ${image.cloud} is not configured in this images service`);
    const job = image.job;
    if (!job) return this.fail(image, 'the image has no copy or build recorded');
    try {
      const next = job.kind === 'copy' ? await this.copyStep(image, job, cloud) : await this.buildStep(image, job, cloud);
      retries.count = 0;
      return next;
    } catch (error) {
      if (error instanceof VersionConflictError || error instanceof StoppedError) throw error;
      const transient = !isCloudError(error) || error.code === 'TRANSIENT' || error.code === 'RATE_LIMITED';
      if (transient && retries.count < this.options.transientRetries) {
        retries.count++;
        this.log.warn({ err: error, imageId: image.id, attempt: retries.count }, 'image step failed; retrying');
        return this.wait(image, Math.min(this.options.pollMs * 2 ** retries.count, 30_000));
      }
      const known = isCloudError(error) || error instanceof CloudUnavailableError;
      if (!known) this.log.error({ err: error, imageId: image.id }, 'image step failed');
      return this.fail(image, known ? (error as Error).message : `internal error: ${(error as Error).message ?? String(error)}`);
    }
  }

  /** Ends the attempt as FAILED with the cloud's message; a build first deletes its builder. */
  private fail(image: ImageRecord, message: string): Promise<ImageRecord> {
    const job = image.job;
    if (job?.kind === 'build' && job.builderMachineId && job.step !== 'cleanup') {
      return this.commit(image, { job: { ...job, step: 'cleanup', outcome: { status: 'FAILED', message } } }, undefined, [`failed: ${message}`]);
    }
    return this.commit(image, { message }, { type: 'FAILED' }, [`failed: ${message}`]);
  }

  private timedOut(job: CopyJob | BuildJob, limitMs: number): boolean {
    return Date.now() - Date.parse(job.startedAt) > limitMs;
  }

  // ---------------------------------------------------------------- copies

  private async copyStep(image: ImageRecord, job: CopyJob, cloud: CloudSettings): Promise<ImageRecord> {
    const { provider } = cloud;
    const entry = this.entryOf(image);
    if (!entry) return this.fail(image, `${image.os} ${image.osVersion} with Kubernetes ${image.kubernetesVersion} is no longer in the catalogue`);

    if (job.step === 'start') {
      // A copy made before (by a previous attempt, another replica, a wiped service) is used as is.
      const there = pickCatalogueImage(entry, await provider.findImages(image.region, catalogueSearchTags(entry)));
      if (there) {
        return this.commit(image, { job: { ...job, step: 'wait', cloudImageId: there.id } }, { type: 'COPY_STARTED' }, [`found ${there.id} in ${image.region}`]);
      }
      const source = job.source ?? (await this.copySource(cloud, entry, image));
      if (!source) return this.fail(image, `no ${entry.os} ${entry.osVersion} image with Kubernetes ${entry.kubernetesMinor} to copy from`);
      const original = await provider.describeImage(source.region, source.imageId);
      if (!original || original.status === 'failed') return this.fail(image, `the image to copy, ${source.imageId} in ${source.region}, is ${original ? 'failed' : 'gone'}`);
      if (original.status !== 'available') return this.wait(image);
      const copy = await provider.copyImage({
        sourceRegion: source.region,
        sourceImageId: source.imageId,
        region: image.region,
        name: copyName(original, job.attempt),
        ...(original.description ? { description: original.description } : {}),
        tags: { ...catalogueTags(original), [ImageTagKeys.catalogue]: entry.key, [ImageTagKeys.imageId]: image.id },
        clientToken: `fleetgraph-image-copy-${image.id}-${job.attempt}`,
      });
      return this.commit(image, { job: { ...job, step: 'wait', source, cloudImageId: copy.id } }, { type: 'COPY_STARTED' }, [
        `copying ${source.imageId} from ${source.region} to ${image.region} as ${copy.id}`,
      ]);
    }

    const copy = job.cloudImageId ? await provider.describeImage(image.region, job.cloudImageId) : null;
    if (copy?.status === 'available') {
      return this.commit(
        image,
        { artifactId: copy.id, kubernetesVersion: copy.tags[ImageTagKeys.kubernetesVersion] ?? image.kubernetesVersion },
        { type: 'AVAILABLE' },
        [`${copy.id} is available in ${image.region}`],
      );
    }
    if (copy?.status === 'failed') return this.fail(image, copy.statusMessage ?? `the copy ${copy.id} failed`);
    if (this.timedOut(job, this.options.copyTimeoutMs)) return this.fail(image, `the copy did not complete within ${Math.round(this.options.copyTimeoutMs / 60_000)} minutes`);
    // A fresh copy may not be visible yet (clouds are eventually consistent): keep looking until the timeout.
    return this.wait(image);
  }

  private entryOf(image: Image): CatalogueEntry | undefined {
    return CATALOGUE.find((e) => e.os === image.os && e.osVersion === image.osVersion && catalogueDefinition(e).signature === image.signature);
  }

  /** Where the out-of-the-box image of an entry is copied from. */
  private async copySource(cloud: CloudSettings, entry: CatalogueEntry, image: Image): Promise<CopyJob['source']> {
    if (cloud.catalogue.kind === 'configured') {
      const where = configuredImage(cloud.catalogue.images, entry, image.region);
      return where.kind === 'copy' ? { region: where.sourceRegion, imageId: where.sourceImageId } : null;
    }
    const region = cloud.catalogue.sourceRegion;
    const known = await this.repo.findBySignature({ tenantId: PUBLIC_TENANT, cloud: cloud.type, region, signature: image.signature });
    if (known?.status === 'READY' && known.artifactId) return { region, imageId: known.artifactId };
    const found = pickCatalogueImage(entry, await cloud.provider.findImages(region, catalogueSearchTags(entry)));
    return found ? { region, imageId: found.id } : null;
  }

  // ---------------------------------------------------------------- builds

  private async buildStep(image: ImageRecord, job: BuildJob, cloud: CloudSettings): Promise<ImageRecord> {
    const { provider } = cloud;
    if (job.step !== 'cleanup' && job.step !== 'base' && this.timedOut(job, this.options.buildTimeoutMs)) {
      return this.fail(image, `the build did not complete within ${Math.round(this.options.buildTimeoutMs / 60_000)} minutes`);
    }
    switch (job.step) {
      case 'base':
        return this.buildBase(image, job, cloud);

      case 'launch': {
        const region = await this.clouds.region(cloud.type, image.region);
        const zone = region?.zones[0];
        if (!zone) return this.fail(image, `${cloud.type} has no zone in ${image.region}`);
        const machine = await provider.createMachine({
          clientToken: `fleetgraph-image-build-${image.id}-${job.attempt}`,
          clusterId: BUILDER_CLUSTER_ID,
          pool: BUILDER_POOL,
          machineName: `builder-${image.id.toLowerCase()}-${job.attempt}`,
          role: 'WORKER',
          region: image.region,
          zone,
          instanceType: cloud.builderInstanceType,
          imageId: job.baseImageId!,
          userData: builderUserData(image.definition, { installKubernetes: job.installKubernetes, signature: image.signature }),
          tags: { [ImageTagKeys.imageId]: image.id, [ImageTagKeys.signature]: image.signature, [ImageTagKeys.tenant]: image.tenantId },
        });
        return this.commit(image, { job: { ...job, step: 'boot', builderMachineId: machine.id } }, { type: 'BUILD_STARTED' }, [
          `builder ${machine.id} (${cloud.builderInstanceType}) launched from ${job.baseImageId} in ${zone}`,
        ]);
      }

      case 'boot':
      case 'configure': {
        if (job.step === 'configure' && cloud.simulateBuilds) {
          const lines = simulatedBuildLog(image.definition, { installKubernetes: job.installKubernetes });
          if (job.progress >= lines.length) return this.commit(image, { job: { ...job, step: 'capture' } });
          await this.sleep(this.options.simulatedTaskMs);
          return this.commit(image, { job: { ...job, progress: job.progress + 1 } }, undefined, [lines[job.progress]!]);
        }
        const machine = await provider.describeMachine(image.region, job.builderMachineId!);
        if (machine && (machine.state === 'terminated' || machine.state === 'terminating' || machine.state === 'failed')) {
          return this.fail(image, `the builder ${machine.id} is ${machine.state}${machine.stateReason ? `: ${machine.stateReason}` : ''}`);
        }
        if (job.step === 'boot' && machine?.state === 'running') {
          const line = cloud.simulateBuilds ? `builder ${machine.id} is running; configuring` : `builder ${machine.id} is running; waiting for its cloud-init run to power it off`;
          return this.commit(image, { job: { ...job, step: 'configure' } }, undefined, [line]);
        }
        // On a real cloud the builder powers itself off when its run is done.
        if (!cloud.simulateBuilds && machine?.state === 'stopped') {
          return this.commit(image, { job: { ...job, step: 'capture' } }, undefined, [`builder ${machine.id} finished and powered off`]);
        }
        return this.wait(image);
      }

      case 'capture': {
        const captured = await provider.createImageFromMachine({
          region: image.region,
          machineId: job.builderMachineId!,
          name: `fleetgraph-${image.signature}-${image.id.toLowerCase()}-a${job.attempt}`,
          ...(image.description ? { description: image.description.slice(0, 255) } : {}),
          tags: {
            [ImageTagKeys.imageId]: image.id,
            [ImageTagKeys.signature]: image.signature,
            [ImageTagKeys.tenant]: image.tenantId,
            [ImageTagKeys.os]: image.os,
            [ImageTagKeys.osVersion]: image.osVersion,
            [ImageTagKeys.kubernetesVersion]: image.kubernetesVersion ?? '',
          },
        });
        return this.commit(image, { job: { ...job, step: 'wait-image', cloudImageId: captured.id } }, undefined, [
          `capturing the builder ${job.builderMachineId} as ${captured.id}`,
        ]);
      }

      case 'wait-image': {
        const captured = await provider.describeImage(image.region, job.cloudImageId!);
        if (captured?.status === 'available') {
          return this.commit(image, { job: { ...job, step: 'cleanup', outcome: { status: 'READY', artifactId: captured.id } } }, undefined, [
            `${captured.id} is available`,
          ]);
        }
        if (captured?.status === 'failed') return this.fail(image, captured.statusMessage ?? `the image ${captured.id} failed`);
        return this.wait(image);
      }

      case 'cleanup': {
        const deleted: string[] = [];
        if (job.builderMachineId) {
          try {
            await provider.deleteMachine(image.region, job.builderMachineId);
            deleted.push(`builder ${job.builderMachineId} deleted`);
          } catch (error) {
            // A builder that cannot be deleted (permissions, say) must not cost the image: say so, and go on.
            if (!isCloudError(error) || error.code === 'TRANSIENT' || error.code === 'RATE_LIMITED') throw error;
            this.log.error({ err: error, imageId: image.id, machineId: job.builderMachineId }, 'could not delete an image builder');
            deleted.push(`could not delete builder ${job.builderMachineId}: ${error.message}`);
          }
        }
        const outcome = job.outcome ?? { status: 'FAILED' as const, message: 'the build ended without an outcome' };
        if (outcome.status === 'READY') {
          return this.commit(image, { artifactId: outcome.artifactId }, { type: 'AVAILABLE' }, [...deleted, `ready: ${outcome.artifactId}`]);
        }
        return this.commit(image, { message: outcome.message }, { type: 'FAILED' }, [...deleted, `failed: ${outcome.message}`]);
      }
    }
  }

  /** Finds the image the build starts from: the bring-your-own ref, or the catalogue image in the region (copied there first if need be). */
  private async buildBase(image: ImageRecord, job: BuildJob, cloud: CloudSettings): Promise<ImageRecord> {
    if (job.base.kind === 'ref') {
      const base = await cloud.provider.describeImage(image.region, job.base.imageRef);
      if (!base) return this.fail(image, `image "${job.base.imageRef}" is not known to ${cloud.type} in ${image.region}`);
      if (base.status === 'failed') return this.fail(image, `image "${job.base.imageRef}" has failed: ${base.statusMessage ?? 'no reason given'}`);
      if (base.status !== 'available') return this.wait(image);
      return this.commit(image, { job: { ...job, step: 'launch', baseImageId: base.id } }, undefined, [`base image ${base.id} (${base.name})`]);
    }
    const key = job.base.key;
    const entry = CATALOGUE.find((e) => e.key === key);
    if (!entry) return this.fail(image, `the out-of-the-box image ${key} is no longer in the catalogue`);
    if (!job.baseRequested) {
      // Asked once per attempt, which retries a FAILED base; afterwards only watched.
      let base: ImageRecord;
      try {
        base = await this.publicImages.ensure(cloud, entry, image.region);
      } catch (error) {
        // The catalogue cannot have it here (not published, not configured): that is final. Anything else is retried.
        if (error instanceof ImageRequestError) return this.fail(image, error.message);
        throw error;
      }
      return this.commit(image, { job: { ...job, baseRequested: true } }, undefined, [`base image ${base.id}: ${entry.description} (${base.status})`]);
    }
    const base = await this.repo.findBySignature({ tenantId: PUBLIC_TENANT, cloud: cloud.type, region: image.region, signature: catalogueDefinition(entry).signature });
    if (!base) return this.commit(image, { job: { ...job, baseRequested: false } });
    if (base.status === 'READY' && base.artifactId) {
      return this.commit(image, { job: { ...job, step: 'launch', baseImageId: base.artifactId } }, undefined, [`base image ${base.artifactId} is ready`]);
    }
    if (base.status === 'FAILED') return this.fail(image, `the base image ${base.id} failed: ${base.message ?? 'no reason given'}`);
    return this.wait(image);
  }
}

/** The tags that make a copy recognisable as the catalogue image it copies. */
function catalogueTags(image: CloudImage): Record<string, string> {
  const keys = [ImageTagKeys.os, ImageTagKeys.osVersion, ImageTagKeys.kubernetesVersion, ImageTagKeys.hardening];
  return Object.fromEntries(keys.filter((k) => image.tags[k] !== undefined).map((k) => [k, image.tags[k]!]));
}

/** The copy's name: the original's, with the attempt after the first (names are unique per account and region). */
function copyName(original: CloudImage, attempt: number): string {
  const suffix = attempt > 1 ? `-r${attempt}` : '';
  return `${original.name.slice(0, 128 - suffix.length)}${suffix}`;
}
