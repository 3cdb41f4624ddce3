import { GatewayExecutedFieldError, StreamSubscription } from '@fleetgraph/kit';
import { clusterConditions, clusterEvent, fleetCluster } from '@fleetgraph/schema';
import { Arg, ID, Resolver } from 'type-graphql';
import { ClusterEvent, ConditionsUpdate, FleetCluster } from './cluster.type.js';

/**
 * The clusters' live subscriptions. They are declared here, next to the data they stream, and
 * executed by the gateway over the JetStream subjects the orchestrator publishes to.
 */
@Resolver()
export class ClusterSubscriptions {
  @StreamSubscription(
    () => ConditionsUpdate,
    {
      subject: clusterConditions.subjectTemplate(),
      stream: clusterConditions.stream,
      authorize: 'cluster(id: $clusterId) { id }',
      replay: 'LAST',
    },
    { description: "The cluster's phase and conditions now, then after every change." },
  )
  clusterConditions(@Arg('clusterId', () => ID, { description: 'The cluster.' }) _clusterId: string): ConditionsUpdate {
    throw new GatewayExecutedFieldError('clusterConditions');
  }

  @StreamSubscription(
    () => ClusterEvent,
    {
      subject: clusterEvent.subjectTemplate(),
      stream: clusterEvent.stream,
      authorize: 'cluster(id: $clusterId) { id }',
      replay: 'CURSOR',
    },
    {
      description:
        "The cluster's events as they happen; with `after`, every retained event after that cursor first, " +
        'with no gap and no duplicate.',
    },
  )
  clusterEvents(
    @Arg('clusterId', () => ID, { description: 'The cluster.' }) _clusterId: string,
    @Arg('after', () => String, { nullable: true, description: 'A cursor from an event or from Cluster.events.' })
    _after?: string,
  ): ClusterEvent {
    throw new GatewayExecutedFieldError('clusterEvents');
  }

  @StreamSubscription(
    () => FleetCluster,
    {
      subject: fleetCluster.subjectTemplate({ id: '*' }),
      stream: fleetCluster.stream,
      replay: 'LAST',
      // Each cluster reaches only callers who may read its project (the gateway checks, per event).
      project: 'projectId',
    },
    {
      description:
        'The fleet, live: every cluster the caller may read (in one project, or in every project it may read; ' +
        'a tenant admin: the whole tenant) as it is now, then each one again after every change of its phase, ' +
        'conditions or converged generation. A deleted cluster is sent once more with phase DELETED.',
    },
  )
  fleet(
    @Arg('projectId', () => ID, { nullable: true, description: 'One project only.' }) _projectId?: string,
  ): FleetCluster {
    throw new GatewayExecutedFieldError('fleet');
  }
}
