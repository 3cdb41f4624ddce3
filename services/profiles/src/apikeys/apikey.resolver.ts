import { API_KEY_SUBJECT_PREFIX, graphqlError, userError, type Identity, type SubgraphContext } from '@fleetgraph/kit';
import { formatApiKey } from '@fleetgraph/schema';
import { Arg, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { API_KEY_LIMITS, validateApiKey, type ApiKey as StoredApiKey } from './apikey.js';
import type { RevocationAnnouncer } from './apikey.bus.js';
import { CreateApiKeyInput } from './apikey.input.js';
import type { ApiKeyRepository } from './apikey.repo.js';
import { ApiKey, ApiKeyPayload, CreateApiKeyPayload } from './apikey.type.js';

/** The GraphQL shape of a stored key (its hash left out). */
export function toGraphQL(key: StoredApiKey): ApiKey {
  const date = (value: string | null) => (value === null ? null : new Date(value));
  return Object.assign(new ApiKey(), {
    id: key.id,
    projectId: key.projectId,
    name: key.name,
    role: key.role,
    createdAt: new Date(key.createdAt),
    expiresAt: date(key.expiresAt),
    lastUsedAt: date(key.lastUsedAt),
    revokedAt: date(key.revokedAt),
  });
}

/** Whether the caller manages the project's keys: its admins; tenant admins read them too. */
export const canListApiKeys = (identity: Identity, projectId: string) =>
  identity.claims.tenantAdmin === true || identity.can('admin', projectId);

@Resolver(() => ApiKey)
export class ApiKeyResolver {
  constructor(
    private readonly keys: ApiKeyRepository,
    private readonly announceRevocation: RevocationAnnouncer,
  ) {}

  @Query(() => [ApiKey], {
    description: `The project's API keys, newest first, revoked and expired ones included (at most ${API_KEY_LIMITS.listed}): for the project's admins (and tenant admins).`,
  })
  async apiKeys(
    @Arg('projectId', () => ID) projectId: string,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<ApiKey[]> {
    if (!canListApiKeys(identity, projectId))
      throw graphqlError('FORBIDDEN', 'listing API keys needs the admin role in the project');
    return (await this.keys.list(identity.tenantId, projectId)).map(toGraphQL);
  }

  @Mutation(() => CreateApiKeyPayload, {
    description: `Creates an API key of a project (project admins; not with an API key), returning it once in \`secret\`. At most ${API_KEY_LIMITS.activePerProject} keys of a project are not revoked.`,
  })
  async createApiKey(
    @Arg('input', () => CreateApiKeyInput) input: CreateApiKeyInput,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<CreateApiKeyPayload> {
    if (!identity.can('admin', input.projectId))
      throw graphqlError('FORBIDDEN', 'creating an API key needs the admin role in the project');
    // A leaked key must not be able to outlive its revocation through keys it made.
    if (identity.userId.startsWith(API_KEY_SUBJECT_PREFIX))
      throw graphqlError('FORBIDDEN', 'an API key cannot create API keys');
    const now = new Date();
    const problems = validateApiKey(input, now);
    if (
      problems.length === 0 &&
      (await this.keys.countUnrevoked(identity.tenantId, input.projectId)) >= API_KEY_LIMITS.activePerProject
    )
      problems.push({
        field: ['input', 'projectId'],
        code: 'TOO_MANY_API_KEYS',
        message: `a project has at most ${API_KEY_LIMITS.activePerProject} keys that are not revoked; revoke one first`,
      });
    if (problems.length > 0)
      return { apiKey: null, secret: null, userErrors: problems.map((p) => userError(p.code, p.message, p.field)) };
    const { key, secret } = await this.keys.create(identity.tenantId, identity.userId, input, now);
    return { apiKey: toGraphQL(key), secret: formatApiKey(key.id, secret), userErrors: [] };
  }

  @Mutation(() => ApiKeyPayload, {
    description:
      'Revokes an API key (admins of its project): every gateway refuses it from then on, and ends the subscriptions it holds. Revoking a revoked key changes nothing.',
  })
  async revokeApiKey(@Arg('id', () => ID) id: string, @Ctx() { identity }: SubgraphContext): Promise<ApiKeyPayload> {
    const key = await this.keys.get(identity, id);
    if (!key) return { apiKey: null, userErrors: [userError('NOT_FOUND', 'no such API key', ['id'])] };
    if (!identity.can('admin', key.projectId))
      throw graphqlError('FORBIDDEN', 'revoking an API key needs the admin role in its project');
    const revoked = await this.keys.revoke(key.id);
    if (!revoked) return { apiKey: null, userErrors: [userError('NOT_FOUND', 'no such API key', ['id'])] };
    // Again for a key revoked before: an announcement lost then is made good now.
    await this.announceRevocation(revoked);
    return { apiKey: toGraphQL(revoked), userErrors: [] };
  }
}
