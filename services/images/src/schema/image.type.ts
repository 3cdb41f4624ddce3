import { Node } from '@fleetgraph/kit';
import { CloudType } from '@fleetgraph/schema';
import { Directive, Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { ImageSource, ImageStatus } from '../domain/image.js';

registerEnumType(CloudType, { name: 'CloudType', description: 'A cloud Fleetgraph provisions clusters on.' });
registerEnumType(ImageSource, {
  name: 'ImageSource',
  description: 'Where an image comes from.',
  valuesConfig: {
    OUT_OF_BOX: { description: 'The out-of-the-box catalogue: an OS with Kubernetes, hardened to the CIS benchmark.' },
    CUSTOMIZED: {
      description:
        'Built from the out-of-the-box image or a bring-your-own one by running Ansible roles ' +
        '(and installing Kubernetes).',
    },
    BRING_YOUR_OWN: { description: 'An image of the caller, with Kubernetes on it already, used as is.' },
  },
});
registerEnumType(ImageStatus, {
  name: 'ImageStatus',
  description: 'Where an image is in its life.',
  valuesConfig: {
    PENDING: { description: 'Asked for; waiting for its base image or a builder.' },
    BUILDING: { description: 'A builder machine is running its roles, or being captured.' },
    COPYING: { description: 'Being copied into its region.' },
    READY: { description: 'Usable: artifactId names it in the cloud.' },
    FAILED: { description: 'The last attempt failed (message says why); the next resolve retries it.' },
  },
});

@Directive('@key(fields: "id")')
@ObjectType({ implements: Node, description: 'A machine image for cluster nodes, in one cloud region.' })
export class Image extends Node {
  @Field({
    description:
      'Derived from the OS pack definition (OS, version, Kubernetes version, roles in order, values); ' +
      'equal packs share one image.',
  })
  signature!: string;

  @Field({ description: 'Operating system, e.g. "ubuntu".' })
  os!: string;

  @Field({ description: 'Operating system version, e.g. "22.04".' })
  osVersion!: string;

  @Field(() => String, {
    nullable: true,
    description: 'Kubernetes on the image: the patch release when known, else the minor.',
  })
  kubernetesVersion!: string | null;

  @Field(() => CloudType, { description: 'The cloud the image is in.' })
  cloud!: CloudType;

  @Field({ description: 'The region the image is in.' })
  region!: string;

  @Field(() => ImageSource, { description: 'Where the image comes from.' })
  source!: ImageSource;

  @Field(() => ImageStatus, { description: 'Where the image is in its life.' })
  status!: ImageStatus;

  @Field(() => String, {
    nullable: true,
    description: "The cloud's id of the image: AMI id, Azure image id, local image id.",
  })
  artifactId!: string | null;

  @Field(() => [String], { description: 'The Ansible roles run on it, in order.' })
  ansibleRoles!: string[];

  @Field(() => Date, { description: 'When the image was first asked for.' })
  createdAt!: Date;

  @Field(() => String, { nullable: true, description: 'What the image is, e.g. the CIS benchmark it is hardened to.' })
  description!: string | null;

  @Field(() => String, {
    nullable: true,
    description: "The latest progress of its copy or build; why it FAILED, in the cloud's words.",
  })
  message!: string | null;

  @Field(() => [String], { description: 'The last lines of its copy or build log, oldest first.' })
  log!: string[];

  @Field(() => Date, { description: 'When the image last changed.' })
  updatedAt!: Date;

  /** Owning tenant (`public` for the catalogue); not exposed. */
  tenantId!: string;
}

/**
 * A cluster, as far as the images subgraph knows it: its id. The clusters subgraph owns the
 * type; this one contributes `Cluster.images`.
 */
@Directive('@key(fields: "id")')
@ObjectType({ description: 'A Kubernetes cluster, reconciled towards its definition for its whole life.' })
export class Cluster {
  @Field(() => ID, { description: 'The globally unique id.' })
  id!: string;
}
