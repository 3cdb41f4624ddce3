import { DuplicateKeyError, type Collection, type Store, type StoredDoc } from '@fleetgraph/kit';
import type { ImageStore } from '../app/ports.js';
import { PUBLIC_TENANT } from '../domain/catalogue.js';
import { IN_PROGRESS, type CloudType, type ImageRecord, type NewImageRecord } from '../domain/image.js';

export type { ImageRecord, NewImageRecord };

/** That a cluster uses an image: what `Cluster.images` reads. */
interface ImageUse extends StoredDoc {
  tenantId: string;
  projectId: string;
  clusterId: string;
  imageId: string;
  firstResolvedAt: string;
}

/** Most images one listing reads. */
export const MAX_LIST = 2_000;

/**
 * Images in the store. `(tenantId, cloud, region, signature)` is unique, so that concurrent
 * resolves of one definition cannot both create an image; every update is a compare-and-set on
 * the version read, so that only one worker's step wins.
 */
export class ImageRepository implements ImageStore {
  private constructor(
    private readonly images: Collection<ImageRecord>,
    private readonly uses: Collection<ImageUse>,
  ) {}

  static async open(store: Store): Promise<ImageRepository> {
    const images = await store.collection<ImageRecord>({
      name: 'images',
      indexes: [
        { fields: ['tenantId', 'cloud', 'region', 'signature'], unique: true },
        { fields: ['tenantId', 'cloud', 'region', 'createdAt'] },
        { fields: ['status'] },
        { fields: ['pendingEvent'] },
      ],
    });
    const uses = await store.collection<ImageUse>({
      name: 'image_uses',
      indexes: [{ fields: ['tenantId', 'clusterId'] }],
    });
    return new ImageRepository(images, uses);
  }

  get(id: string): Promise<ImageRecord | null> {
    return this.images.get(id);
  }

  /** An image the tenant may see: its own, or the public catalogue's. */
  async getVisible(tenantId: string, id: string): Promise<ImageRecord | null> {
    const image = await this.images.get(id);
    return image && (image.tenantId === tenantId || image.tenantId === PUBLIC_TENANT) ? image : null;
  }

  async findBySignature({
    tenantId,
    cloud,
    region,
    signature,
  }: {
    tenantId: string;
    cloud: CloudType;
    region: string;
    signature: string;
  }): Promise<ImageRecord | null> {
    const page = await this.images.find({ where: { tenantId, cloud, region, signature }, first: 1 });
    return page.nodes[0] ?? null;
  }

  /** @returns null when an image of the same (tenant, cloud, region, signature) exists already. */
  async insert(image: NewImageRecord): Promise<ImageRecord | null> {
    try {
      return await this.images.insert(image);
    } catch (error) {
      if (error instanceof DuplicateKeyError) return null;
      throw error;
    }
  }

  /** Compare-and-set. @throws VersionConflictError when it changed since it was read. */
  replace(image: ImageRecord): Promise<ImageRecord> {
    return this.images.replace(image);
  }

  /** The images of some tenants (`public` included when asked), optionally on one cloud and region. */
  async list(
    tenantIds: readonly string[],
    filter: { cloud?: CloudType | null; region?: string | null } = {},
  ): Promise<ImageRecord[]> {
    const where = {
      tenantId: { in: [...tenantIds] },
      ...(filter.cloud ? { cloud: filter.cloud } : {}),
      ...(filter.region ? { region: filter.region } : {}),
    };
    const out: ImageRecord[] = [];
    let after: string | null = null;
    do {
      const page = await this.images.find({ where, orderBy: [{ field: 'createdAt' }], first: 500, after });
      out.push(...page.nodes);
      after = page.hasNextPage ? page.endCursor : null;
    } while (after && out.length < MAX_LIST);
    return out;
  }

  /** Images with work left (PENDING, COPYING, BUILDING), oldest id first. */
  async inProgress(limit = 500): Promise<ImageRecord[]> {
    return (await this.images.find({ where: { status: { in: [...IN_PROGRESS] } }, first: limit })).nodes;
  }

  /** Images whose last status change may not have been published. */
  async withPendingEvents(limit = 500): Promise<ImageRecord[]> {
    return (await this.images.find({ where: { pendingEvent: true }, first: limit })).nodes;
  }

  /** Records that a cluster uses an image; once per (tenant, cluster, image). */
  async recordUse(
    use: { tenantId: string; projectId: string; clusterId: string; imageId: string },
    now = new Date(),
  ): Promise<void> {
    try {
      await this.uses.insert({
        id: JSON.stringify([use.tenantId, use.clusterId, use.imageId]),
        ...use,
        firstResolvedAt: now.toISOString(),
      });
    } catch (error) {
      if (!(error instanceof DuplicateKeyError)) throw error;
    }
  }

  /** The images a cluster of the tenant uses, with the project the cluster is in. */
  async usesOfCluster(tenantId: string, clusterId: string): Promise<{ projectId: string; imageId: string }[]> {
    const page = await this.uses.find({ where: { tenantId, clusterId }, first: 500 });
    return page.nodes.map((u) => ({ projectId: u.projectId, imageId: u.imageId }));
  }
}
