import type { Identity, SubgraphContext } from '@fleetgraph/kit';
import type { ApiKey } from './apikey.js';
import type { ApiKeyRepository } from './apikey.repo.js';
import { canListApiKeys, toGraphQL } from './apikey.resolver.js';

/** A key the caller may read, as `apiKeys` lists them (its project's admins, tenant admins), or null. */
export async function readableApiKey(keys: ApiKeyRepository, identity: Identity, id: string): Promise<ApiKey | null> {
  const key = await keys.get(identity, id);
  return key && canListApiKeys(identity, key.projectId) ? key : null;
}

/** Resolves `ApiKey` references (`Query.node`, served by the clusters subgraph): null unless readable. */
export const apiKeyReferences = (keys: () => ApiKeyRepository) => ({
  ApiKey: {
    __resolveReference: async (ref: { id: string }, { identity }: SubgraphContext) => {
      const key = await readableApiKey(keys(), identity, ref.id);
      return key && toGraphQL(key);
    },
  },
});
