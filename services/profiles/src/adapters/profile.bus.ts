import { BusError, Identity, type Bus } from '@fleetgraph/kit';
import { getProfile, listProfileVersions, profilesNode } from '@fleetgraph/schema';
import { newestFirst } from '../domain/profile.js';
import type { ProfileRepository } from './profile.repo.js';

/** Answers other services' questions about profiles over NATS. */
export function serveProfileRequests(bus: Bus, profiles: ProfileRepository): void {
  bus.serve(getProfile, async ({ tenantId, projectId, id }) => {
    const profile = await profiles.getInTenant(tenantId, id, projectId);
    if (!profile) throw new BusError('NOT_FOUND', `profile ${id} not found`);
    return profile;
  });
  bus.serve(listProfileVersions, async ({ tenantId, projectId, name }) => ({
    profiles: newestFirst(await profiles.versionsOf(tenantId, projectId, name)),
  }));
  // Query.node (the clusters subgraph) asks whether the caller may read a profile, as its reference would.
  bus.serve(
    profilesNode,
    async ({ id, claims }) => ({ readable: (await profiles.get(new Identity(claims), id)) !== null }),
    { tokens: { type: 'ClusterProfile' } },
  );
}
