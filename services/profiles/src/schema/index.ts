import { buildSubgraph } from '@fleetgraph/kit';
import type { GraphQLSchema } from 'graphql';
import type { ProfileRepository } from '../adapters/profile.repo.js';
import type { RevocationAnnouncer } from '../apikeys/apikey.bus.js';
import type { ApiKeyRepository } from '../apikeys/apikey.repo.js';
import { apiKeyReferences } from '../apikeys/apikey.reference.js';
import { ApiKeyResolver } from '../apikeys/apikey.resolver.js';
import { profileReferences } from './profile.reference.js';
import { ProfileResolver } from './profile.resolver.js';

export interface ProfilesDeps {
  profiles: ProfileRepository;
  apiKeys: ApiKeyRepository;
  /** Tells every gateway that a key was revoked. */
  announceRevocation: RevocationAnnouncer;
}

/** The profiles subgraph; without deps, a schema good for printing only. */
export function buildProfilesSchema(deps?: ProfilesDeps): Promise<GraphQLSchema> {
  const need = () => {
    if (!deps) throw new Error('the profiles schema was built without dependencies');
    return deps;
  };
  const resolvers = new Map<unknown, unknown>(
    deps
      ? [
          [ProfileResolver, new ProfileResolver(deps.profiles)],
          [ApiKeyResolver, new ApiKeyResolver(deps.apiKeys, deps.announceRevocation)],
        ]
      : [],
  );
  return buildSubgraph({
    resolvers: [ProfileResolver, ApiKeyResolver],
    references: { ...profileReferences(() => need().profiles), ...apiKeyReferences(() => need().apiKeys) },
    container: { get: (resolverClass) => resolvers.get(resolverClass) ?? need() },
  });
}
