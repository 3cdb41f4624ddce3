import { Node, PageInfo, UserError } from '@fleetgraph/kit';
import { CloudType } from '@fleetgraph/schema';
import { Directive, Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { PackType } from '../domain/profile.js';

registerEnumType(CloudType, { name: 'CloudType', description: 'A cloud Fleetgraph provisions clusters on.' });
registerEnumType(PackType, { name: 'PackType', description: 'What a pack provides, in the order layers are applied.' });

@ObjectType({ description: 'One pack of a profile, with its values.' })
export class PackLayer {
  @Field(() => PackType, { description: 'What the pack provides.' })
  type!: PackType;

  @Field({ description: 'Pack name, e.g. "ubuntu", "kubernetes", "calico", "csi-aws-ebs", "prometheus".' })
  name!: string;

  @Field({ description: 'Pack version, e.g. "22.04", "1.30.4".' })
  version!: string;

  @Field(() => String, { nullable: true, description: "The pack's values, YAML text." })
  values!: string | null;

  @Field(() => [String], {
    nullable: true,
    description: 'OS layers only: Ansible roles that customise the image, in order.',
  })
  ansibleRoles!: string[] | null;

  @Field(() => String, {
    nullable: true,
    description: 'OS layers only: bring-your-own image (AMI id, Azure image id, local image name).',
  })
  imageRef!: string | null;

  @Field(() => Boolean, {
    nullable: true,
    description: 'OS layers only: the image already has Kubernetes; use it as is.',
  })
  skipK8sInstall!: boolean | null;
}

@Directive('@key(fields: "id")')
@ObjectType({ implements: Node, description: 'A versioned cluster profile: the packs a cluster is made of.' })
export class ClusterProfile extends Node {
  @Field(() => ID, { description: 'The project the profile belongs to.' })
  projectId!: string;

  @Field({ description: 'Profile name, unique per project together with the version.' })
  name!: string;

  @Field({ description: 'Semantic version; (projectId, name, version) is unique.' })
  version!: string;

  @Field(() => String, { nullable: true, description: 'What the profile is for.' })
  description!: string | null;

  @Field(() => CloudType, { nullable: true, description: 'The cloud the profile is made for; null when any.' })
  cloud!: CloudType | null;

  @Field(() => [PackLayer], { description: 'Layers in application order: OS, KUBERNETES, CNI, CSI, ADDON.' })
  layers!: PackLayer[];

  @Field(() => Date, { description: 'When this version was created.' })
  createdAt!: Date;

  /** Owning tenant; not exposed. */
  tenantId!: string;
}

@ObjectType({ description: 'A cluster profile of a page and its cursor.' })
export class ClusterProfileEdge {
  @Field({ description: 'Opaque; pass it as `after` to continue right after this node.' })
  cursor!: string;

  @Field(() => ClusterProfile, { description: 'The profile.' })
  node!: ClusterProfile;
}

@ObjectType({ description: 'A page of cluster profiles.' })
export class ClusterProfileConnection {
  @Field(() => [ClusterProfile], { description: 'The profiles of this page.' })
  nodes!: ClusterProfile[];

  @Field(() => [ClusterProfileEdge], { description: 'The profiles of this page, each with its cursor (Relay).' })
  edges!: ClusterProfileEdge[];

  @Field(() => PageInfo, { description: 'Where this page ends.' })
  pageInfo!: PageInfo;
}

@ObjectType({ description: 'The outcome of a profile mutation.' })
export class ClusterProfilePayload {
  @Field(() => ClusterProfile, { nullable: true, description: 'The profile, when the mutation succeeded.' })
  profile!: ClusterProfile | null;

  @Field(() => [UserError], { description: 'Why the mutation did not succeed; empty on success.' })
  userErrors!: UserError[];
}
