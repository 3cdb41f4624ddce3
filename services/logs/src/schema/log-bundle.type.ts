import { Node, UserError } from '@fleetgraph/kit';
import { Directive, Field, Float, ID, ObjectType, registerEnumType } from 'type-graphql';
import { LogBundleStatus, type LogBundle as DomainLogBundle } from '../domain/bundle.js';

registerEnumType(LogBundleStatus, {
  name: 'LogBundleStatus',
  description:
    'Where a log bundle is: REQUESTED (waiting for a collection slot), COLLECTING, READY (downloadable) or FAILED.',
  valuesConfig: {
    REQUESTED: { description: 'Requested; waiting for a free collection slot.' },
    COLLECTING: { description: "The cluster's agent is sending the logs." },
    READY: { description: 'The archive is stored and can be downloaded.' },
    FAILED: { description: 'The collection failed; `message` says why.' },
  },
});

@Directive('@key(fields: "id")')
@ObjectType({ implements: Node, description: "An archive of a cluster's logs, collected on request from its agent." })
export class LogBundle extends Node {
  @Field(() => ID, { description: 'The cluster the logs are from.' })
  clusterId!: string;

  @Field(() => LogBundleStatus, { description: 'Where the bundle is.' })
  status!: LogBundleStatus;

  @Field(() => String, {
    nullable: true,
    description: 'Why it FAILED (agent unreachable, timeout, too large, ...), or what it is doing.',
  })
  message!: string | null;

  @Field(() => String, {
    nullable: true,
    description: "The archive's file name, after the cluster and the time of the request; it also holds Manifest.yaml.",
  })
  fileName!: string | null;

  @Field(() => Float, { nullable: true, description: "The archive's size in bytes, once READY." })
  sizeBytes!: number | null;

  @Field(() => String, {
    nullable: true,
    description:
      'When READY: a link to the archive that needs no other credential and expires within minutes; ' +
      'query again for a fresh one.',
  })
  downloadUrl?: string | null;

  @Field(() => Date, { description: 'When it was requested.' })
  requestedAt!: Date;

  @Field(() => Date, { nullable: true, description: 'When it became READY.' })
  readyAt!: Date | null;

  /** The stored bundle it shows (tenant, expiry): not exposed. */
  record!: DomainLogBundle;
}

@ObjectType({ description: 'The outcome of requestClusterLogs.' })
export class LogBundlePayload {
  @Field(() => LogBundle, { nullable: true, description: 'The bundle, REQUESTED, when the request was taken.' })
  bundle!: LogBundle | null;

  @Field(() => [UserError], { description: 'Why the request was not taken; empty on success.' })
  userErrors!: UserError[];
}

/**
 * A cluster, as far as the logs subgraph knows it: its id. The clusters subgraph owns the type;
 * this one contributes `Cluster.logBundles`.
 */
@Directive('@key(fields: "id")')
@ObjectType({ description: 'A Kubernetes cluster.' })
export class Cluster {
  @Field(() => ID, { description: 'The globally unique id.' })
  id!: string;
}
