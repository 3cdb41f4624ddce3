import { isCloudError } from '@fleetgraph/clouds';
import { builderUserData, simulatedBuildLog } from '../domain/build-script.js';
import { CATALOGUE, ImageTagKeys, PUBLIC_TENANT } from '../domain/catalogue.js';
import type { BuildJob, BuildStep, ImageRecord } from '../domain/image.js';
import { ImageRequestError } from './errors.js';
import { commit, fail, timedOut, wait, type ImagePhase } from './image-phases.js';
import { catalogueDefinition } from './public-images.js';

/**
 * Building a customised image: find the base image, launch a builder from it, wait for it to
 * boot and run its configuration (simulated on the local cloud), capture its disk, wait for the
 * image, delete the builder. Each step's outcome is written before the next.
 */

/** The cluster id builder machines are tagged with, so that they can be found (and counted) as one group. */
export const BUILDER_CLUSTER_ID = 'fleetgraph-image-builder';
export const BUILDER_POOL = 'image-builder';

/**
 * base: the image the build starts from: the bring-your-own ref, or the catalogue image in the
 * region (copied there first if need be).
 */
const base: ImagePhase<BuildJob> = async (deps, { image, job, cloud }) => {
  if (job.base.kind === 'ref') {
    const found = await cloud.provider.describeImage(image.region, job.base.imageRef);
    if (!found) return fail(`image "${job.base.imageRef}" is not known to ${cloud.type} in ${image.region}`);
    if (found.status === 'failed')
      return fail(`image "${job.base.imageRef}" has failed: ${found.statusMessage ?? 'no reason given'}`);
    if (found.status !== 'available') return wait;
    return commit({ job: { ...job, step: 'launch', baseImageId: found.id } }, undefined, [
      `base image ${found.id} (${found.name})`,
    ]);
  }
  const key = job.base.key;
  const entry = CATALOGUE.find((e) => e.key === key);
  if (!entry) return fail(`the out-of-the-box image ${key} is no longer in the catalogue`);
  if (!job.baseRequested) {
    // Asked once per attempt, which retries a FAILED base; afterwards only watched.
    let requested: ImageRecord;
    try {
      requested = await deps.publicImages.ensure(cloud, entry, image.region);
    } catch (error) {
      // The catalogue cannot have it here (not published, not configured): that is final. Anything else is retried.
      if (error instanceof ImageRequestError) return fail(error.message);
      throw error;
    }
    return commit({ job: { ...job, baseRequested: true } }, undefined, [
      `base image ${requested.id}: ${entry.description} (${requested.status})`,
    ]);
  }
  const found = await deps.images.findBySignature({
    tenantId: PUBLIC_TENANT,
    cloud: cloud.type,
    region: image.region,
    signature: catalogueDefinition(entry).signature,
  });
  if (!found) return commit({ job: { ...job, baseRequested: false } });
  if (found.status === 'READY' && found.artifactId) {
    return commit({ job: { ...job, step: 'launch', baseImageId: found.artifactId } }, undefined, [
      `base image ${found.artifactId} is ready`,
    ]);
  }
  if (found.status === 'FAILED')
    return fail(`the base image ${found.id} failed: ${found.message ?? 'no reason given'}`);
  return wait;
};

/** launch: the builder machine, from the base image, with the build's cloud-init user data. */
const launch: ImagePhase<BuildJob> = async ({ clouds }, { image, job, cloud }) => {
  const region = await clouds.region(cloud.type, image.region);
  const zone = region?.zones[0];
  if (!zone) return fail(`${cloud.type} has no zone in ${image.region}`);
  const machine = await cloud.provider.createMachine({
    clientToken: `fleetgraph-image-build-${image.id}-${job.attempt}`,
    clusterId: BUILDER_CLUSTER_ID,
    pool: BUILDER_POOL,
    machineName: `builder-${image.id.toLowerCase()}-${job.attempt}`,
    role: 'WORKER',
    region: image.region,
    zone,
    instanceType: cloud.builderInstanceType,
    imageId: job.baseImageId!,
    userData: builderUserData(image.definition, {
      installKubernetes: job.installKubernetes,
      signature: image.signature,
    }),
    tags: {
      [ImageTagKeys.imageId]: image.id,
      [ImageTagKeys.signature]: image.signature,
      [ImageTagKeys.tenant]: image.tenantId,
    },
  });
  return commit({ job: { ...job, step: 'boot', builderMachineId: machine.id } }, { type: 'BUILD_STARTED' }, [
    `builder ${machine.id} (${cloud.builderInstanceType}) launched from ${job.baseImageId} in ${zone}`,
  ]);
};

/**
 * boot, configure: the builder runs, then does its work (one simulated task per step on the local
 * cloud; on a real cloud it powers itself off when done).
 */
const builderRun: ImagePhase<BuildJob> = async (deps, { image, job, cloud }) => {
  if (job.step === 'configure' && cloud.simulateBuilds) {
    const lines = simulatedBuildLog(image.definition, { installKubernetes: job.installKubernetes });
    if (job.progress >= lines.length) return commit({ job: { ...job, step: 'capture' } });
    await deps.sleep(deps.options.simulatedTaskMs);
    return commit({ job: { ...job, progress: job.progress + 1 } }, undefined, [lines[job.progress]!]);
  }
  const machine = await cloud.provider.describeMachine(image.region, job.builderMachineId!);
  if (machine && (machine.state === 'terminated' || machine.state === 'terminating' || machine.state === 'failed')) {
    return fail(
      `the builder ${machine.id} is ${machine.state}${machine.stateReason ? `: ${machine.stateReason}` : ''}`,
    );
  }
  if (job.step === 'boot' && machine?.state === 'running') {
    const line = cloud.simulateBuilds
      ? `builder ${machine.id} is running; configuring`
      : `builder ${machine.id} is running; waiting for its cloud-init run to power it off`;
    return commit({ job: { ...job, step: 'configure' } }, undefined, [line]);
  }
  if (!cloud.simulateBuilds && machine?.state === 'stopped') {
    return commit({ job: { ...job, step: 'capture' } }, undefined, [`builder ${machine.id} finished and powered off`]);
  }
  return wait;
};

/**
 * capture: the builder's disk as a new image (named after the image and attempt, so a retried
 * capture finds the first).
 */
const capture: ImagePhase<BuildJob> = async (_deps, { image, job, cloud }) => {
  const captured = await cloud.provider.createImageFromMachine({
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
  return commit({ job: { ...job, step: 'wait-image', cloudImageId: captured.id } }, undefined, [
    `capturing the builder ${job.builderMachineId} as ${captured.id}`,
  ]);
};

/** wait-image: until the captured image is available (the outcome, kept for after the cleanup) or failed. */
const waitForImage: ImagePhase<BuildJob> = async (_deps, { image, job, cloud }) => {
  const captured = await cloud.provider.describeImage(image.region, job.cloudImageId!);
  if (captured?.status === 'available') {
    return commit(
      { job: { ...job, step: 'cleanup', outcome: { status: 'READY', artifactId: captured.id } } },
      undefined,
      [`${captured.id} is available`],
    );
  }
  if (captured?.status === 'failed') return fail(captured.statusMessage ?? `the image ${captured.id} failed`);
  return wait;
};

/** cleanup: deletes the builder, then ends the attempt with its outcome. */
const cleanup: ImagePhase<BuildJob> = async ({ log }, { image, job, cloud }) => {
  const deleted: string[] = [];
  if (job.builderMachineId) {
    try {
      await cloud.provider.deleteMachine(image.region, job.builderMachineId);
      deleted.push(`builder ${job.builderMachineId} deleted`);
    } catch (error) {
      // A builder that cannot be deleted (permissions, say) must not cost the image: say so, and go on.
      if (!isCloudError(error) || error.code === 'TRANSIENT' || error.code === 'RATE_LIMITED') throw error;
      log.error(
        { err: error, imageId: image.id, machineId: job.builderMachineId },
        'could not delete an image builder',
      );
      deleted.push(`could not delete builder ${job.builderMachineId}: ${error.message}`);
    }
  }
  const outcome = job.outcome ?? { status: 'FAILED' as const, message: 'the build ended without an outcome' };
  if (outcome.status === 'READY')
    return commit({ artifactId: outcome.artifactId }, { type: 'AVAILABLE' }, [
      ...deleted,
      `ready: ${outcome.artifactId}`,
    ]);
  return commit({ message: outcome.message }, { type: 'FAILED' }, [...deleted, `failed: ${outcome.message}`]);
};

/** Past the build timeout, a step fails the attempt instead (the base and the cleanup aside). */
const timed =
  (phase: ImagePhase<BuildJob>): ImagePhase<BuildJob> =>
  async (deps, scope) => {
    const { buildTimeoutMs } = deps.options;
    if (timedOut(scope.job, buildTimeoutMs))
      return fail(`the build did not complete within ${Math.round(buildTimeoutMs / 60_000)} minutes`);
    return phase(deps, scope);
  };

/** The phases of a build, by step. */
export const buildPhases: Record<BuildStep, ImagePhase<BuildJob>> = {
  base,
  launch: timed(launch),
  boot: timed(builderRun),
  configure: timed(builderRun),
  capture: timed(capture),
  'wait-image': timed(waitForImage),
  cleanup,
};
