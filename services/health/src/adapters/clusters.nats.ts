import type { Bus, Following } from '@fleetgraph/kit';
import { clusterLifecycle } from '@fleetgraph/schema';
import type { ClusterRegistry } from '../ingest/registry.js';

/** The follower of cluster lifecycle events: `caughtUp` once every cluster that exists is known; `malformed` events dead-lettered. */
export type ClusterFollower = Following;

export interface FollowOptions {
  bus: Bus;
  registry: ClusterRegistry;
  /** Called after a cluster was deleted (to forget its data). */
  onRemoved(clusterId: string): void;
  /** How long to wait for the clusters service's stream to exist between tries. @default 1000 */
  retryMs?: number;
}

/**
 * Follows `clusterLifecycle` (`clusters.v1.lifecycle.>`) into the registry. The stream keeps the
 * last event per cluster, so replaying it from the start gives every cluster that exists; the
 * bus's follower (an ordered consumer, no durable state, one per replica) does that, then stays
 * live. Every replica needs every cluster, so no work is shared here. A malformed event is kept
 * in the dead-letter stream, as the kit's consumers do, once however often it is read again.
 */
export function followClusters(options: FollowOptions): ClusterFollower {
  const { bus, registry } = options;
  return bus.follow(clusterLifecycle, {
    retryMs: options.retryMs,
    handle: ({ payload }) => {
      if (registry.apply(payload) === 'removed') options.onRemoved(payload.id);
    },
  });
}
