import { isCloudError, type CloudImage, type Region } from '@fleetgraph/clouds';
import type { RequestDef } from '@fleetgraph/kit';
import type { resolveImage } from '@fleetgraph/schema';
import { OPERATING_SYSTEMS, PUBLIC_TENANT, type OsName } from '../domain/catalogue.js';
import type { ImageRecord } from '../domain/image.js';
import type { ImagePlan } from '../domain/plan.js';
import { planImage } from '../domain/plan.js';
import { CloudUnavailableError, ImageRequestError } from './errors.js';
import type { ImageCloud, ImageClouds } from './ports.js';
import type { PublicImages } from './public-images.js';
import { newRecord, type ImageRecords } from './records.js';

type RequestOf<D> = D extends RequestDef<infer Req, unknown> ? Req : never;
/** What `images.v1.resolve` carries. */
export type ResolveRequest = RequestOf<typeof resolveImage>;

/**
 * Serves resolve requests: checks them, finds or creates the image, records the cluster that
 * uses it, and answers at once with the image's current state. Copies and builds are the
 * worker's, in the background.
 */
export class ImageRequests {
  constructor(
    private readonly records: ImageRecords,
    private readonly clouds: ImageClouds,
    private readonly publicImages: PublicImages,
  ) {}

  /** @throws ImageRequestError for bad input, CloudUnavailableError when the cloud cannot be asked. */
  async resolve(request: ResolveRequest, now = new Date()): Promise<ImageRecord> {
    if (request.tenantId === PUBLIC_TENANT)
      throw new ImageRequestError(`tenant id "${PUBLIC_TENANT}" is reserved for the out-of-the-box catalogue`);
    const cloud = this.clouds.get(request.cloud);
    if (!cloud) throw new ImageRequestError(`cloud ${request.cloud} is not configured in the images service`);
    const planned = planImage({ os: request.os, kubernetes: request.kubernetes });
    if (!planned.ok) throw new ImageRequestError(planned.problem);
    await this.checkRegion(cloud, request.region);

    const image = await this.imageFor(planned.plan, cloud, request, now);
    if (request.clusterId) {
      await this.records.repo.recordUse(
        { tenantId: request.tenantId, projectId: request.projectId, clusterId: request.clusterId, imageId: image.id },
        now,
      );
    }
    return image;
  }

  private async imageFor(plan: ImagePlan, cloud: ImageCloud, request: ResolveRequest, now: Date): Promise<ImageRecord> {
    if (plan.kind === 'OUT_OF_BOX') return this.publicImages.ensure(cloud, plan.entry, request.region, now);

    const key = { tenantId: request.tenantId, cloud: cloud.type, region: request.region, signature: plan.signature };
    const existing = await this.records.repo.findBySignature(key);
    if (existing) return this.records.reuse(existing, now);

    const common = {
      ...key,
      projectId: request.projectId,
      os: request.os.name,
      osVersion: request.os.version,
      kubernetesVersion: request.kubernetes.version,
      ansibleRoles: plan.definition.os.ansibleRoles,
      definition: plan.definition,
    };
    if (plan.kind === 'BRING_YOUR_OWN') {
      const found = await this.describeRef(cloud, request.region, plan.imageRef);
      return this.records.createOrGet(
        newRecord(
          {
            ...common,
            source: 'BRING_YOUR_OWN',
            artifactId: found.id,
            description: found.description ?? `Bring-your-own image ${plan.imageRef}`,
            message: null,
            job: null,
          },
          now,
        ),
      );
    }
    if (plan.base.kind === 'ref') await this.describeRef(cloud, request.region, plan.base.imageRef);
    const osName = OPERATING_SYSTEMS[request.os.name as OsName].displayName;
    const roles = plan.definition.os.ansibleRoles;
    const description =
      `${osName} ${request.os.version} with Kubernetes ${request.kubernetes.version}` +
      (roles.length > 0 ? `, customised with the Ansible roles ${roles.join(', ')}` : '') +
      (plan.base.kind === 'catalogue'
        ? `, built from the out-of-the-box image (${plan.base.entry.description})`
        : `, built from ${plan.base.imageRef}`);
    return this.records.createOrGet(
      newRecord(
        {
          ...common,
          source: 'CUSTOMIZED',
          artifactId: null,
          description,
          message: 'waiting for a builder',
          job: {
            kind: 'build',
            step: 'base',
            attempt: 1,
            base:
              plan.base.kind === 'catalogue'
                ? { kind: 'catalogue', key: plan.base.entry.key }
                : { kind: 'ref', imageRef: plan.base.imageRef },
            installKubernetes: plan.installKubernetes,
            baseRequested: false,
            baseImageId: null,
            builderMachineId: null,
            progress: 0,
            cloudImageId: null,
            outcome: null,
            startedAt: now.toISOString(),
          },
        },
        now,
      ),
    );
  }

  private async checkRegion(cloud: ImageCloud, region: string): Promise<void> {
    let regions: Region[];
    try {
      regions = await this.clouds.regions(cloud.type);
    } catch (error) {
      if (isCloudError(error))
        throw new CloudUnavailableError(`could not ask ${cloud.type} for its regions: ${error.message}`, {
          cause: error,
        });
      throw error;
    }
    if (!regions.some((r) => r.name === region)) {
      throw new ImageRequestError(
        `region "${region.slice(0, 64)}" is not a region of ${cloud.type}: ` +
          `it has ${regions.map((r) => r.name).join(', ') || 'none'}`,
      );
    }
  }

  /** A bring-your-own image in the region. @throws ImageRequestError when the cloud does not know it, or it failed */
  private async describeRef(cloud: ImageCloud, region: string, imageRef: string): Promise<CloudImage> {
    let found: CloudImage | null;
    try {
      found = await cloud.provider.describeImage(region, imageRef);
    } catch (error) {
      if (isCloudError(error) && error.code === 'INVALID_CONFIGURATION') found = null;
      else if (isCloudError(error))
        throw new CloudUnavailableError(`could not ask ${cloud.type} for image ${imageRef}: ${error.message}`, {
          cause: error,
        });
      else throw error;
    }
    if (!found) throw new ImageRequestError(`image "${imageRef}" is not known to ${cloud.type} in ${region}`);
    if (found.status === 'failed')
      throw new ImageRequestError(
        `image "${imageRef}" in ${cloud.type} ${region} has failed: ${found.statusMessage ?? 'no reason given'}`,
      );
    return found;
  }
}
