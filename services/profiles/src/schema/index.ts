import { buildSubgraph } from '@fleetgraph/kit';
import type { GraphQLSchema } from 'graphql';
import type { ProfileRepository } from '../adapters/profile.repo.js';
import { profileReferences } from './profile.reference.js';
import { ProfileResolver } from './profile.resolver.js';

export interface ProfilesDeps {
  profiles: ProfileRepository;
}

/** The profiles subgraph; without deps, a schema good for printing only. */
export function buildProfilesSchema(deps?: ProfilesDeps): Promise<GraphQLSchema> {
  const need = () => {
    if (!deps) throw new Error('the profiles schema was built without dependencies');
    return deps;
  };
  const resolver = deps && new ProfileResolver(deps.profiles);
  return buildSubgraph({
    resolvers: [ProfileResolver],
    references: profileReferences(() => need().profiles),
    container: { get: () => resolver ?? need() },
  });
}
