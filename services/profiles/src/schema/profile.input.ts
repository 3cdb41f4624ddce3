import { CloudType } from '@fleetgraph/schema';
import { Field, ID, InputType } from 'type-graphql';
import { PackType } from '../domain/profile.js';

@InputType({ description: 'A pack of a new profile.' })
export class PackLayerInput {
  @Field(() => PackType, { description: 'What the pack provides.' })
  type!: PackType;

  @Field({ description: 'Pack name.' })
  name!: string;

  @Field({ description: 'Pack version.' })
  version!: string;

  @Field(() => String, { nullable: true, description: "The pack's values, YAML text." })
  values?: string | null;

  @Field(() => [String], { nullable: true, description: 'OS layers only: Ansible roles, in order.' })
  ansibleRoles?: string[] | null;

  @Field(() => String, { nullable: true, description: 'OS layers only: bring-your-own image.' })
  imageRef?: string | null;

  @Field(() => Boolean, { nullable: true, description: 'OS layers only: the image already has Kubernetes.' })
  skipK8sInstall?: boolean | null;
}

@InputType({ description: 'A new cluster profile, or a new version of one.' })
export class CreateClusterProfileInput {
  @Field(() => ID, { description: 'The project to create it in; the caller must be its editor or admin.' })
  projectId!: string;

  @Field({ description: 'Profile name: lowercase letters, digits and "-".' })
  name!: string;

  @Field({ description: 'Semantic version, e.g. 1.0.0.' })
  version!: string;

  @Field(() => String, { nullable: true, description: 'What the profile is for.' })
  description?: string | null;

  @Field(() => CloudType, { nullable: true, description: 'The cloud the profile is made for.' })
  cloud?: CloudType | null;

  @Field(() => [PackLayerInput], { description: 'Layers in order: OS, KUBERNETES, CNI, CSI, ADDON.' })
  layers!: PackLayerInput[];
}
