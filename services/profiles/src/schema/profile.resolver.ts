import {
  graphqlError,
  InvalidQueryError,
  PageArgs,
  PAGE_SIZE,
  toConnection,
  userError,
  type SubgraphContext,
} from '@fleetgraph/kit';
import { Arg, Args, ArgsType, Ctx, Field, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { ProfileRepository } from '../adapters/profile.repo.js';
import { newestFirst, validateProfile, type ClusterProfile as Profile } from '../domain/profile.js';
import { CreateClusterProfileInput } from './profile.input.js';
import { ClusterProfile, ClusterProfileConnection, ClusterProfilePayload } from './profile.type.js';

@ArgsType()
class ClusterProfilesArgs extends PageArgs {
  @Field(() => ID, { nullable: true, description: 'One project; without it, every project the caller may read.' })
  projectId?: string | null;
}

/** The GraphQL shape of a stored profile. */
export const toGraphQL = (p: Profile): ClusterProfile =>
  Object.assign(new ClusterProfile(), { ...p, createdAt: new Date(p.createdAt) });

/** Validates a page size, refusing what the schema cannot express. */
export function pageSize(first: number | null | undefined): number {
  if (first == null) return PAGE_SIZE.default;
  if (!Number.isInteger(first) || first < 1 || first > PAGE_SIZE.max) {
    throw graphqlError('BAD_USER_INPUT', `first must be between 1 and ${PAGE_SIZE.max}`);
  }
  return first;
}

/** Runs a paged read, turning a malformed cursor into BAD_USER_INPUT. */
export async function paged<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof InvalidQueryError)
      throw graphqlError('BAD_USER_INPUT', 'after is not a cursor of this list', { cause: error });
    throw error;
  }
}

@Resolver(() => ClusterProfile)
export class ProfileResolver {
  constructor(private readonly profiles: ProfileRepository) {}

  @Query(() => ClusterProfileConnection, {
    description: 'Cluster profiles, newest first: in one project, or in every project the caller may read.',
  })
  async clusterProfiles(
    @Args() { projectId, first, after }: ClusterProfilesArgs,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<ClusterProfileConnection> {
    const page = await paged(() => this.profiles.list(identity, { projectId, first: pageSize(first), after }));
    return toConnection(page, page.nodes.map(toGraphQL));
  }

  @Query(() => ClusterProfile, {
    nullable: true,
    description: 'A cluster profile by id; null when unknown or not visible to the caller.',
  })
  async clusterProfile(
    @Arg('id', () => ID) id: string,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<ClusterProfile | null> {
    const profile = await this.profiles.get(identity, id);
    return profile && toGraphQL(profile);
  }

  @Mutation(() => ClusterProfilePayload, {
    description: 'Creates a cluster profile, or a new version of one (editor or admin of the project).',
  })
  async createClusterProfile(
    @Arg('input', () => CreateClusterProfileInput) input: CreateClusterProfileInput,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<ClusterProfilePayload> {
    if (!identity.can('editor', input.projectId)) {
      throw graphqlError('FORBIDDEN', 'creating a profile needs the editor or admin role in the project');
    }
    const problems = validateProfile(input);
    if (problems.length > 0)
      return { profile: null, userErrors: problems.map((p) => userError(p.code, p.message, p.field)) };

    const profile = await this.profiles.create(identity.tenantId, input);
    if (!profile) {
      return {
        profile: null,
        userErrors: [
          userError('DUPLICATE_VERSION', `profile ${input.name} ${input.version} exists already in this project`, [
            'input',
            'version',
          ]),
        ],
      };
    }
    return { profile: toGraphQL(profile), userErrors: [] };
  }

  @FieldResolver(() => [ClusterProfile], {
    description: 'Every version of this profile name in its project, newest first.',
  })
  async versions(@Root() profile: ClusterProfile, @Ctx() { identity }: SubgraphContext): Promise<ClusterProfile[]> {
    if (!identity.canSee(profile)) return [];
    return newestFirst(await this.profiles.versionsOf(profile.tenantId, profile.projectId, profile.name)).map(
      toGraphQL,
    );
  }
}
