import {
  graphqlError,
  InvalidQueryError,
  PageArgs,
  PAGE_SIZE,
  toConnection,
  userError,
  type Identity,
  type SubgraphContext,
} from '@fleetgraph/kit';
import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ulid } from 'ulid';
import type { AddressPolicy } from './address-policy.js';
import { DestinationError, parseWebhookUrl, resolveDestination, systemResolve, type Resolve } from './destination.js';
import { subscribableEventTypes, type WebhookEventType } from './events.js';
import type { DeliveryDoc, WebhookDoc, WebhookRepository } from './webhook.repo.js';
import {
  CreateWebhookInput,
  CreateWebhookPayload,
  RotateWebhookSecretPayload,
  Webhook,
  type WebhookDelivery,
  WebhookDeliveryConnection,
  WebhookPayload,
} from './webhook.type.js';

/** The most webhooks a project has. */
export const MAX_WEBHOOKS_PER_PROJECT = 20;
const MAX_DESCRIPTION = 1000;

export interface WebhookResolverDeps {
  repo: WebhookRepository;
  policy: AddressPolicy;
  /** Host names to addresses. @default the system resolver */
  resolve?: Resolve;
  /** Wakes the dispatcher (a test delivery was queued). */
  poke(): void;
  /** How long testWebhook waits for its delivery's first attempt before answering. @default 11000 */
  testWaitMs?: number;
}

/** The GraphQL shape of a stored webhook (its secrets left out). */
export const toWebhook = (doc: WebhookDoc): Webhook =>
  Object.assign(new Webhook(), {
    id: doc.id,
    projectId: doc.projectId,
    url: doc.url,
    events: doc.events,
    description: doc.description,
    enabled: doc.enabled,
    disabledReason: doc.disabledReason,
    disabledAt: doc.disabledAt ? new Date(doc.disabledAt) : null,
    createdAt: new Date(doc.createdAt),
  });

const toDelivery = (doc: DeliveryDoc): WebhookDelivery => ({
  id: doc.id,
  event: doc.event,
  status: doc.status,
  attempts: doc.attempts,
  responseStatus: doc.responseStatus,
  lastAttemptAt: doc.lastAttemptAt ? new Date(doc.lastAttemptAt) : null,
  payload: doc.payload,
  clusterId: doc.clusterId,
  latencyMs: doc.latencyMs,
  error: doc.error,
  nextAttemptAt: doc.nextAttemptAt ? new Date(doc.nextAttemptAt) : null,
  createdAt: new Date(doc.createdAt),
});

const ADMINS_ONLY = "webhooks are for the project's admins";

/** Webhooks: project admins create, list, test, rotate, enable and delete them; the dispatcher sends. */
@Resolver(() => Webhook)
export class WebhookResolver {
  constructor(private readonly deps: WebhookResolverDeps) {}

  @Query(() => [Webhook], { description: "A project's webhooks, oldest first (the project's admins)." })
  async webhooks(
    @Arg('projectId', () => ID) projectId: string,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<Webhook[]> {
    if (!identity.can('admin', projectId)) throw graphqlError('FORBIDDEN', ADMINS_ONLY);
    return (await this.deps.repo.list(identity.tenantId, projectId)).map(toWebhook);
  }

  @FieldResolver(() => WebhookDeliveryConnection, {
    description: 'Its deliveries, newest first: the delivery log (finished ones are kept 7 days).',
  })
  async deliveries(
    @Root() webhook: Webhook,
    @Args(() => PageArgs) { first, after }: PageArgs,
  ): Promise<WebhookDeliveryConnection> {
    if (first != null && (!Number.isInteger(first) || first < 1 || first > PAGE_SIZE.max))
      throw graphqlError('BAD_USER_INPUT', `first must be between 1 and ${PAGE_SIZE.max}`);
    try {
      const page = await this.deps.repo.listDeliveries(webhook.id, first ?? PAGE_SIZE.default, after);
      return toConnection(page, page.nodes.map(toDelivery));
    } catch (error) {
      if (error instanceof InvalidQueryError)
        throw graphqlError('BAD_USER_INPUT', 'after is not a cursor of this list');
      throw error;
    }
  }

  @Mutation(() => CreateWebhookPayload, {
    description:
      "Creates a webhook (the project's admins). Its signing secret is in the payload, once. The URL is refused " +
      'when it is not http(s), holds credentials, or resolves to a private, loopback or link-local address that ' +
      'WEBHOOK_ALLOWED_CIDRS does not allow.',
  })
  async createWebhook(
    @Arg('input', () => CreateWebhookInput) input: CreateWebhookInput,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<CreateWebhookPayload> {
    if (!identity.can('admin', input.projectId)) throw graphqlError('FORBIDDEN', ADMINS_ONLY);
    const refuse = (code: string, message: string, field: string[]) => ({
      webhook: null,
      secret: null,
      userErrors: [userError(code, message, field)],
    });
    const events = [...new Set(input.events)];
    if (events.length === 0) return refuse('INVALID_EVENTS', 'name at least one event', ['input', 'events']);
    if (events.some((e) => !(subscribableEventTypes as readonly string[]).includes(e)))
      return refuse('INVALID_EVENTS', 'TEST deliveries are sent by testWebhook only', ['input', 'events']);
    if (input.description != null && input.description.length > MAX_DESCRIPTION)
      return refuse('INVALID_DESCRIPTION', `at most ${MAX_DESCRIPTION} characters`, ['input', 'description']);
    try {
      await resolveDestination(parseWebhookUrl(input.url), this.deps.policy, this.deps.resolve ?? systemResolve);
    } catch (error) {
      if (error instanceof DestinationError) return refuse(error.code, error.message, ['input', 'url']);
      throw error;
    }
    if ((await this.deps.repo.count(identity.tenantId, input.projectId)) >= MAX_WEBHOOKS_PER_PROJECT)
      return refuse('TOO_MANY_WEBHOOKS', `a project has at most ${MAX_WEBHOOKS_PER_PROJECT} webhooks`, ['input']);
    const { webhook, secret } = await this.deps.repo.create(
      {
        tenantId: identity.tenantId,
        projectId: input.projectId,
        url: input.url,
        events: events as WebhookEventType[],
        description: input.description ?? null,
      },
      new Date(),
    );
    return { webhook: toWebhook(webhook), secret, userErrors: [] };
  }

  @Mutation(() => WebhookPayload, {
    description: "Deletes a webhook and its delivery log (the project's admins); nothing more is sent to it.",
  })
  async deleteWebhook(@Arg('id', () => ID) id: string, @Ctx() { identity }: SubgraphContext): Promise<WebhookPayload> {
    const found = await this.find(identity, id);
    if ('userErrors' in found) return found;
    await this.deps.repo.remove(id);
    return { webhook: toWebhook(found), userErrors: [] };
  }

  @Mutation(() => WebhookPayload, {
    description:
      "Sends a signed test delivery (event TEST) now (the project's admins), and answers once its first attempt " +
      'is made (at most about 11 s): its outcome is the first of `deliveries`.',
  })
  async testWebhook(@Arg('id', () => ID) id: string, @Ctx() { identity }: SubgraphContext): Promise<WebhookPayload> {
    const found = await this.find(identity, id);
    if ('userErrors' in found) return found;
    if (!found.enabled)
      return {
        webhook: toWebhook(found),
        userErrors: [userError('WEBHOOK_DISABLED', 'the webhook is disabled: enableWebhook first', ['id'])],
      };
    const now = new Date();
    const payload = JSON.stringify({
      type: 'TEST',
      timestamp: now.toISOString(),
      data: { projectId: found.projectId, webhookId: found.id, message: 'A test delivery sent by testWebhook.' },
    });
    const queued = await this.deps.repo.enqueue(
      found,
      {
        clusterId: null,
        source: `test:${ulid()}`,
        event: 'TEST',
        order: `${now.toISOString()}|TEST`,
        payload,
        dueAt: now,
      },
      now,
    );
    this.deps.poke();
    if (queued) await this.attempted(queued.id, this.deps.testWaitMs ?? 11_000);
    return { webhook: toWebhook(found), userErrors: [] };
  }

  @Mutation(() => RotateWebhookSecretPayload, {
    description:
      "Gives a webhook a new signing secret (the project's admins), shown once in the payload. For 24 hours " +
      'deliveries are signed with the previous secret too.',
  })
  async rotateWebhookSecret(
    @Arg('id', () => ID) id: string,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<RotateWebhookSecretPayload> {
    const found = await this.find(identity, id);
    if ('userErrors' in found) return { ...found, secret: null };
    const rotated = await this.deps.repo.rotateSecret(id, new Date());
    if (!rotated)
      return { webhook: null, secret: null, userErrors: [userError('NOT_FOUND', 'no such webhook', ['id'])] };
    return { webhook: toWebhook(rotated.webhook), secret: rotated.secret, userErrors: [] };
  }

  @Mutation(() => WebhookPayload, {
    description: "Enables a disabled webhook again (the project's admins): it gets the events that follow.",
  })
  async enableWebhook(@Arg('id', () => ID) id: string, @Ctx() { identity }: SubgraphContext): Promise<WebhookPayload> {
    const found = await this.find(identity, id);
    if ('userErrors' in found) return found;
    const enabled = await this.deps.repo.enable(id);
    if (!enabled) return { webhook: null, userErrors: [userError('NOT_FOUND', 'no such webhook', ['id'])] };
    return { webhook: toWebhook(enabled), userErrors: [] };
  }

  /** A webhook the caller may change: unknown and foreign ids look alike; others' projects are FORBIDDEN. */
  private async find(identity: Identity, id: string): Promise<WebhookDoc | WebhookPayload> {
    const doc = await this.deps.repo.get(id);
    if (!doc || !identity.canSee(doc))
      return { webhook: null, userErrors: [userError('NOT_FOUND', 'no such webhook', ['id'])] };
    if (!identity.can('admin', doc.projectId)) throw graphqlError('FORBIDDEN', ADMINS_ONLY);
    return doc;
  }

  /** Waits until a delivery's first attempt is made (by whichever replica), or `timeoutMs`. */
  private async attempted(id: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const delivery = await this.deps.repo.getDelivery(id);
      if (!delivery || delivery.attempts > 0 || delivery.status !== 'PENDING') return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
