import { defineRequest } from '@fleetgraph/kit';
import { z } from 'zod';
import { packLayerSchema } from './profiles.js';

/**
 * `agent.v1.<clusterId>.apply-packs`: the cluster's agent installs (or upgrades to) the
 * profile's CNI, CSI and add-on packs and answers once each is installed, or with the ones
 * that failed. Served by the agent of that cluster only.
 */
export const applyPacks = defineRequest('agent.v1.{clusterId}.apply-packs', {
  request: z.object({ clusterId: z.string().min(1), tenantId: z.string().min(1), generation: z.number().int(), packs: z.array(packLayerSchema) }),
  reply: z.object({
    installed: z.array(z.object({ name: z.string(), version: z.string() })),
    failed: z.array(z.object({ name: z.string(), version: z.string(), message: z.string() })),
  }),
});
