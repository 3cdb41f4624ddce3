import { PUBLISHER, REGIONS, SEED_IMAGES, SEED_REGION } from './catalog.js';
import { ensureDefaultNetwork } from './ec2/networks.js';
import { stableId } from './net.js';
import type { CloudState } from './state.js';

/** What a fresh local cloud has: a default network per region and the published images. */
export async function seed(state: CloudState): Promise<void> {
  for (const region of REGIONS) await ensureDefaultNetwork(state, region);
  for (const image of SEED_IMAGES) {
    // Ids derive from names, so they are the same in every local cloud, fresh or restarted.
    const id = stableId('ami', image.name);
    if (state.images.get(id)) continue;
    await state.images.put({
      id,
      region: SEED_REGION,
      name: image.name,
      description: image.description,
      state: 'available',
      ownerId: PUBLISHER.ownerId,
      ownerAlias: PUBLISHER.alias,
      isPublic: true,
      creationDate: '2025-06-02T00:00:00.000Z',
      dueAt: null,
      tags: image.tags,
      source: { kind: 'seed' },
    });
  }
}
