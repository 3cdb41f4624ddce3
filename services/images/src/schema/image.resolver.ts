import type { SubgraphContext } from '@fleetgraph/kit';
import { CloudType } from '@fleetgraph/schema';
import { Args, ArgsType, Ctx, Field, FieldResolver, Query, Resolver, Root } from 'type-graphql';
import type { ImageRepository } from '../adapters/image.repo.js';
import { PUBLIC_TENANT } from '../domain/catalogue.js';
import type { Image as StoredImage } from '../domain/image.js';
import { Cluster, Image } from './image.type.js';

/** The GraphQL shape of a stored image. */
export const toGraphQL = (i: StoredImage): Image =>
  Object.assign(new Image(), {
    id: i.id,
    tenantId: i.tenantId,
    signature: i.signature,
    os: i.os,
    osVersion: i.osVersion,
    kubernetesVersion: i.kubernetesVersion,
    cloud: i.cloud,
    region: i.region,
    source: i.source,
    status: i.status,
    artifactId: i.artifactId,
    ansibleRoles: i.ansibleRoles,
    description: i.description,
    message: i.message,
    log: i.log,
    createdAt: new Date(i.createdAt),
    updatedAt: new Date(i.updatedAt),
  });

const SOURCE_ORDER = { OUT_OF_BOX: 0, BRING_YOUR_OWN: 1, CUSTOMIZED: 2 } as const;
const versionKey = (v: string | null) =>
  (v ?? '')
    .split('.')
    .map((p) => p.padStart(6, '0'))
    .join('.');

/** Catalogue first, then by OS, OS version, Kubernetes version, region and age. */
export function displayOrder(a: StoredImage, b: StoredImage): number {
  return (
    SOURCE_ORDER[a.source] - SOURCE_ORDER[b.source] ||
    a.cloud.localeCompare(b.cloud) ||
    a.os.localeCompare(b.os) ||
    versionKey(a.osVersion).localeCompare(versionKey(b.osVersion)) ||
    versionKey(a.kubernetesVersion).localeCompare(versionKey(b.kubernetesVersion)) ||
    a.region.localeCompare(b.region) ||
    a.createdAt.localeCompare(b.createdAt) ||
    a.id.localeCompare(b.id)
  );
}

@ArgsType()
class ImagesArgs {
  @Field(() => CloudType, { nullable: true, description: 'Only images in this cloud.' })
  cloud?: CloudType | null;

  @Field(() => String, { nullable: true, description: 'Only images in this region.' })
  region?: string | null;
}

@Resolver(() => Image)
export class ImageResolver {
  constructor(private readonly repo: ImageRepository) {}

  @Query(() => [Image], {
    description:
      "Images: the out-of-the-box catalogue and the caller's tenant's own, optionally of one cloud and region.",
  })
  async images(@Args() { cloud, region }: ImagesArgs, @Ctx() { identity }: SubgraphContext): Promise<Image[]> {
    const images = await this.repo.list([PUBLIC_TENANT, identity.tenantId], { cloud, region });
    return images.sort(displayOrder).map(toGraphQL);
  }
}

@Resolver(() => Cluster)
export class ClusterImagesResolver {
  constructor(private readonly repo: ImageRepository) {}

  @FieldResolver(() => [Image], { description: 'The images resolved for this cluster.' })
  async images(@Root() cluster: Cluster, @Ctx() { identity }: SubgraphContext): Promise<Image[]> {
    const uses = await this.repo.usesOfCluster(identity.tenantId, cluster.id);
    const readable = uses.filter((u) => identity.canRead(u.projectId));
    const found = await Promise.all(readable.map((u) => this.repo.getVisible(identity.tenantId, u.imageId)));
    return found
      .filter((i): i is NonNullable<typeof i> => i !== null)
      .sort(displayOrder)
      .map(toGraphQL);
  }
}
