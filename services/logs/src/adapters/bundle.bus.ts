import { Identity, type Bus } from '@fleetgraph/kit';
import { logsNode } from '@fleetgraph/schema';
import type { BundleRepository } from './bundle.repo.js';

/**
 * Answers `logs.v1.node.LogBundle` for `Query.node` (served by the clusters subgraph): whether the
 * caller may read the bundle, as the `LogBundle` reference decides.
 */
export function serveBundleNodes(bus: Bus, bundles: BundleRepository): void {
  bus.serve(
    logsNode,
    async ({ id, claims }) => ({ readable: (await bundles.getVisible(new Identity(claims), id)) !== null }),
    { tokens: { type: 'LogBundle' } },
  );
}
