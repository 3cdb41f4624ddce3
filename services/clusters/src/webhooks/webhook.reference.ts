import type { Identity, SubgraphContext } from '@fleetgraph/kit';
import { toWebhook } from './webhook.resolver.js';
import type { WebhookDoc, WebhookRepository } from './webhook.repo.js';

/** A webhook the caller may read, as `webhooks` lists them (its project's admins), or null. */
export async function readableWebhook(
  repo: WebhookRepository,
  identity: Identity,
  id: string,
): Promise<WebhookDoc | null> {
  const doc = await repo.get(id);
  return doc && identity.canSee(doc) && identity.can('admin', doc.projectId) ? doc : null;
}

/** Resolves `Webhook` references: null unless the caller may read it. */
export const webhookReferences = (repo: () => WebhookRepository) => ({
  Webhook: {
    __resolveReference: async (ref: { id: string }, { identity }: SubgraphContext) => {
      const doc = await readableWebhook(repo(), identity, ref.id);
      return doc && toWebhook(doc);
    },
  },
});
