/**
 * Webhooks, their deliveries and the delivery queues, in the clusters service's store (so they
 * survive a restart and are shared by every replica):
 *
 * - `webhooks`: a project's endpoints, with their signing secrets sealed at rest;
 * - `webhook_deliveries`: one per event and webhook, its id the `webhook-id` header; it is the
 *   delivery log too (kept a week after it finished);
 * - `webhook_queues`: one per webhook and cluster (and one per webhook for test deliveries). A
 *   queue is due when its first pending delivery is; a replica claims a queue with a lease before
 *   sending its deliveries in order, so each is sent by one replica at a time, and a delivery
 *   waits for the earlier ones of its webhook and cluster.
 */
import {
  claimLease,
  DuplicateKeyError,
  leaseFields,
  VersionConflictError,
  write,
  type Collection,
  type Page,
  type Store,
  type StoredDoc,
} from '@fleetgraph/kit';
import { ulid } from 'ulid';
import type { Sealer } from '../bootstrap/sealed.js';
import type { WebhookEventType } from './events.js';
import { shouldDisable, type RetrySettings } from './schedule.js';
import { generateSecret } from './signing.js';

interface StoredSecret {
  /** The secret, sealed and bound to the webhook's id. */
  sealed: string;
  createdAt: string;
  /** When a rotated-out secret stops signing; null for the current one. */
  retiresAt: string | null;
}

/** A webhook as stored. */
export interface WebhookDoc extends StoredDoc {
  tenantId: string;
  projectId: string;
  url: string;
  events: WebhookEventType[];
  description: string | null;
  enabled: boolean;
  disabledReason: string | null;
  disabledAt: string | null;
  /** Newest first: the current secret, then rotated ones until they retire. */
  secrets: StoredSecret[];
  /** The first failed attempt since the last success; null while deliveries succeed. */
  failingSince: string | null;
  createdAt: string;
}

export const deliveryStatuses = ['PENDING', 'SUCCEEDED', 'FAILED'] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

/** A delivery as stored: the event's body for one webhook, and how sending it went. */
export interface DeliveryDoc extends StoredDoc {
  webhookId: string;
  tenantId: string;
  projectId: string;
  clusterId: string | null;
  /** The queue it waits in: `<webhookId>:<clusterId>`, or `<webhookId>:test`. */
  queue: string;
  /** The event it carries (see events.ts): unique per webhook, so an event read twice is queued once. */
  source: string;
  event: WebhookEventType;
  /** Its place in its queue. */
  order: string;
  /** The JSON body, the same for every attempt. */
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  responseStatus: number | null;
  latencyMs: number | null;
  error: string | null;
  /** When it was first tried: it is given up once it has been failing for a day since. */
  firstAttemptAt: string | null;
  lastAttemptAt: string | null;
  /** When it is tried (again) while PENDING; null once finished. */
  nextAttemptAt: string | null;
  createdAt: string;
  /** When it SUCCEEDED or FAILED for good; null while PENDING. */
  finishedAt: string | null;
}

/** A queue of deliveries of one webhook and cluster, and the lease of the replica sending them. */
export interface QueueDoc extends StoredDoc {
  webhookId: string;
  clusterId: string | null;
  /** When its first pending delivery is due; null when none is pending. */
  nextAttemptAt: string | null;
  leaseOwner: string | null;
  leaseUntil: string | null;
}

const queueLease = leaseFields<QueueDoc>({ owner: 'leaseOwner', until: 'leaseUntil', time: 'iso' });

/** What a new webhook is made of. */
export interface NewWebhook {
  tenantId: string;
  projectId: string;
  url: string;
  events: WebhookEventType[];
  description: string | null;
}

/** A delivery to queue. */
export interface NewDelivery {
  clusterId: string | null;
  source: string;
  event: WebhookEventType;
  order: string;
  payload: string;
  /** When it may be sent first. */
  dueAt: Date;
}

/** How long a rotated-out secret keeps signing beside the new one. */
export const SECRET_OVERLAP_MS = 24 * 3_600_000;
/** How long a finished delivery stays in the log. */
export const DELIVERY_RETENTION_MS = 7 * 24 * 3_600_000;

const queueOf = (webhookId: string, clusterId: string | null) => `${webhookId}:${clusterId ?? 'test'}`;

/** A write that lost a compare-and-set race too many times in a row. */
export class WebhookWriteConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WebhookWriteConflictError';
  }
}

/** Runs a read-modify-write again on version conflicts, up to 20 times. */
async function retryOnConflict<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof VersionConflictError)) throw error;
      if (i >= 20) throw new WebhookWriteConflictError(`${what}: changed by others too often`, { cause: error });
    }
  }
}

export class WebhookRepository {
  private constructor(
    private readonly store: Store,
    private readonly sealer: Sealer,
    private readonly webhooks: Collection<WebhookDoc>,
    private readonly deliveries: Collection<DeliveryDoc>,
    private readonly queues: Collection<QueueDoc>,
  ) {}

  static async open(store: Store, sealer: Sealer): Promise<WebhookRepository> {
    const webhooks = await store.collection<WebhookDoc>({
      name: 'webhooks',
      indexes: [{ fields: ['tenantId', 'projectId', 'createdAt'] }],
    });
    const deliveries = await store.collection<DeliveryDoc>({
      name: 'webhook_deliveries',
      indexes: [
        { fields: ['webhookId', 'source'], unique: true },
        { fields: ['webhookId'] },
        { fields: ['webhookId', 'status'] },
        { fields: ['queue', 'status', 'order'] },
        { fields: ['finishedAt'] },
      ],
    });
    const queues = await store.collection<QueueDoc>({
      name: 'webhook_queues',
      // Serves `dueQueues`: the queues nobody holds in due order, without reading held ones.
      indexes: [{ fields: ['leaseUntil', 'nextAttemptAt'] }, { fields: ['webhookId'] }],
    });
    return new WebhookRepository(store, sealer, webhooks, deliveries, queues);
  }

  // ------------------------------------------------------------------ webhooks

  /** Stores a new webhook with a new secret. @returns the webhook and its secret (shown once). */
  async create(input: NewWebhook, now: Date): Promise<{ webhook: WebhookDoc; secret: string }> {
    const id = `whk_${ulid()}`;
    const secret = generateSecret();
    const webhook = await this.webhooks.insert({
      id,
      ...input,
      enabled: true,
      disabledReason: null,
      disabledAt: null,
      secrets: [{ sealed: this.sealer.seal(secret, id), createdAt: now.toISOString(), retiresAt: null }],
      failingSince: null,
      createdAt: now.toISOString(),
    });
    return { webhook, secret };
  }

  async get(id: string): Promise<WebhookDoc | null> {
    return this.webhooks.get(id);
  }

  /** The webhooks of a project, oldest first. */
  async list(tenantId: string, projectId: string, first = 100): Promise<WebhookDoc[]> {
    const page = await this.webhooks.find({ where: { tenantId, projectId }, orderBy: [{ field: 'createdAt' }], first });
    return page.nodes;
  }

  async count(tenantId: string, projectId: string): Promise<number> {
    return this.webhooks.count({ tenantId, projectId });
  }

  /** The enabled webhooks of a project that take events of `type` and existed when it happened. */
  async subscribers(tenantId: string, projectId: string, type: WebhookEventType, time: Date): Promise<WebhookDoc[]> {
    const at = time.toISOString();
    return (await this.list(tenantId, projectId)).filter(
      (w) => w.enabled && w.events.includes(type) && w.createdAt <= at,
    );
  }

  /** Deletes a webhook with its queues and its delivery log. */
  async remove(id: string): Promise<void> {
    await this.webhooks.delete(id);
    await this.queues.deleteMany({ webhookId: id });
    await this.deliveries.deleteMany({ webhookId: id });
  }

  /**
   * Gives the webhook a new secret; the previous one keeps signing beside it for `overlapMs`, so
   * that receivers can move to the new one without refusing deliveries.
   */
  async rotateSecret(
    id: string,
    now: Date,
    overlapMs = SECRET_OVERLAP_MS,
  ): Promise<{ webhook: WebhookDoc; secret: string } | null> {
    const secret = generateSecret();
    return retryOnConflict('rotating a webhook secret', async () => {
      const current = await this.webhooks.get(id);
      if (!current) return null;
      const retiresAt = new Date(now.getTime() + overlapMs).toISOString();
      const kept = current.secrets
        .filter((s) => s.retiresAt === null || s.retiresAt > now.toISOString())
        .map((s) => (s.retiresAt === null || s.retiresAt > retiresAt ? { ...s, retiresAt } : s));
      const webhook = await this.webhooks.replace({
        ...current,
        secrets: [{ sealed: this.sealer.seal(secret, id), createdAt: now.toISOString(), retiresAt: null }, ...kept],
      });
      return { webhook, secret };
    });
  }

  /** The secrets a delivery is signed with now: the current one, and rotated ones not yet retired. */
  signingSecrets(webhook: WebhookDoc, now: Date): string[] {
    const at = now.toISOString();
    return webhook.secrets
      .filter((s) => s.retiresAt === null || s.retiresAt > at)
      .map((s) => this.sealer.open(s.sealed, webhook.id));
  }

  /** Enables a disabled webhook again, its failures forgotten. */
  async enable(id: string): Promise<WebhookDoc | null> {
    return retryOnConflict('enabling a webhook', async () => {
      const current = await this.webhooks.get(id);
      if (!current) return null;
      if (current.enabled) return current;
      return this.webhooks.replace({
        ...current,
        enabled: true,
        disabledReason: null,
        disabledAt: null,
        failingSince: null,
      });
    });
  }

  /**
   * Records how an attempt went for the webhook's health: a success clears `failingSince`; a
   * failure sets it, and disables the webhook once its deliveries have failed for
   * `giveUpAfterMs`. @returns the webhook when this failure disabled it
   */
  async recordOutcome(
    id: string,
    ok: boolean,
    now: Date,
    settings: RetrySettings,
    error: string | null,
  ): Promise<WebhookDoc | null> {
    return retryOnConflict('recording a delivery outcome', async () => {
      const current = await this.webhooks.get(id);
      if (!current) return null;
      if (ok) {
        if (current.failingSince !== null) await this.webhooks.replace({ ...current, failingSince: null });
        return null;
      }
      if (!current.enabled) return null;
      const since = current.failingSince ?? now.toISOString();
      if (shouldDisable(new Date(since), now, settings)) {
        const hours = Math.round((now.getTime() - Date.parse(since)) / 360_000) / 10;
        return this.webhooks.replace({
          ...current,
          enabled: false,
          disabledAt: now.toISOString(),
          disabledReason:
            `every delivery failed for ${hours} h (since ${since}); the last: ${error ?? 'unknown'}`.slice(0, 1000),
          failingSince: since,
        });
      }
      if (current.failingSince === null) await this.webhooks.replace({ ...current, failingSince: since });
      return null;
    });
  }

  // ------------------------------------------------------------------ deliveries

  /**
   * Queues a delivery behind the earlier ones of its webhook and cluster, and makes the queue due
   * by `dueAt` at the latest. A delivery of the same webhook and source is queued once.
   * @returns the delivery, or null when it was queued before
   */
  async enqueue(webhook: WebhookDoc, item: NewDelivery, now: Date): Promise<DeliveryDoc | null> {
    const queue = queueOf(webhook.id, item.clusterId);
    const delivery: Omit<DeliveryDoc, 'version'> = {
      id: `msg_${ulid()}`,
      webhookId: webhook.id,
      tenantId: webhook.tenantId,
      projectId: webhook.projectId,
      clusterId: item.clusterId,
      queue,
      source: item.source,
      event: item.event,
      order: item.order,
      payload: item.payload,
      status: 'PENDING',
      attempts: 0,
      responseStatus: null,
      latencyMs: null,
      error: null,
      firstAttemptAt: null,
      lastAttemptAt: null,
      nextAttemptAt: item.dueAt.toISOString(),
      createdAt: now.toISOString(),
      finishedAt: null,
    };
    const due = item.dueAt.toISOString();
    for (let attempt = 1; attempt <= 20; attempt++) {
      const current = await this.queues.get(queue);
      // The queue is written with the delivery (inserted, or its version moved on), so that a
      // replica letting go of the queue meanwhile fails its compare-and-set and looks again.
      const queueWrite = current
        ? write.replace(this.queues, {
            ...current,
            nextAttemptAt: current.nextAttemptAt === null || due < current.nextAttemptAt ? due : current.nextAttemptAt,
          })
        : write.insert(this.queues, {
            id: queue,
            webhookId: webhook.id,
            clusterId: item.clusterId,
            nextAttemptAt: due,
            leaseOwner: null,
            leaseUntil: null,
          });
      try {
        await this.store.commit([write.insert(this.deliveries, delivery), queueWrite]);
        return { ...delivery, version: 1 };
      } catch (error) {
        if (error instanceof DuplicateKeyError) {
          const existing = await this.deliveries.find({
            where: { webhookId: webhook.id, source: item.source },
            first: 1,
          });
          if (existing.nodes.length > 0) return null;
          continue;
        }
        if (!(error instanceof VersionConflictError)) throw error;
      }
    }
    throw new WebhookWriteConflictError(`could not queue a delivery of ${webhook.id}`);
  }

  async getDelivery(id: string): Promise<DeliveryDoc | null> {
    return this.deliveries.get(id);
  }

  /** A webhook's deliveries, newest first. */
  async listDeliveries(webhookId: string, first: number, after?: string | null): Promise<Page<DeliveryDoc>> {
    return this.deliveries.find({ where: { webhookId }, orderBy: [{ field: 'id', direction: 'desc' }], first, after });
  }

  /** Writes a delivery at the version read. @throws VersionConflictError when it changed meanwhile */
  async saveDelivery(delivery: DeliveryDoc): Promise<DeliveryDoc> {
    return this.deliveries.replace(delivery);
  }

  /** The first pending delivery of a queue. */
  async head(queue: string): Promise<DeliveryDoc | null> {
    const page = await this.deliveries.find({
      where: { queue, status: 'PENDING' },
      orderBy: [{ field: 'order' }],
      first: 1,
    });
    return page.nodes[0] ?? null;
  }

  /** Fails every pending delivery of a webhook (or of one queue) for good, with why. @returns how many */
  async failPending(where: { webhookId: string } | { queue: string }, reason: string, now: Date): Promise<number> {
    let failed = 0;
    const filter = { ...where, status: 'PENDING' as const };
    let after: string | null = null;
    for (;;) {
      const page: Page<DeliveryDoc> = await this.deliveries.find({ where: filter, first: 100, after });
      for (const delivery of page.nodes) {
        try {
          await this.deliveries.replace({
            ...delivery,
            status: 'FAILED',
            error: reason.slice(0, 1000),
            nextAttemptAt: null,
            finishedAt: now.toISOString(),
          });
          failed++;
        } catch (error) {
          // Being sent right now: its sender finds the webhook disabled or gone.
          if (!(error instanceof VersionConflictError)) throw error;
        }
      }
      if (!page.hasNextPage) return failed;
      after = page.endCursor;
    }
  }

  /** Drops finished deliveries older than `before` from the log. */
  async deleteFinishedBefore(before: Date): Promise<number> {
    return this.deliveries.deleteBefore('finishedAt', before.toISOString());
  }

  // ------------------------------------------------------------------ queues

  async getQueue(id: string): Promise<QueueDoc | null> {
    return this.queues.get(id);
  }

  /** Due queues nobody holds, most overdue first. */
  async dueQueues(now: Date, limit: number): Promise<QueueDoc[]> {
    const where = { leaseUntil: null, nextAttemptAt: { lte: now.toISOString() } };
    return (await this.queues.find({ where, orderBy: [{ field: 'nextAttemptAt' }], first: limit })).nodes;
  }

  /** Due queues whose lease ran out (its replica died or stalled). */
  async expiredQueues(now: Date, limit: number): Promise<QueueDoc[]> {
    const at = now.toISOString();
    const where = { leaseUntil: { lte: at }, nextAttemptAt: { lte: at } };
    const orderBy = [{ field: 'leaseUntil' as const }, { field: 'nextAttemptAt' as const }];
    return (await this.queues.find({ where, orderBy, first: limit })).nodes;
  }

  /** Claims a queue for `owner`, unless another replica holds it. */
  async claimQueue(queue: QueueDoc, owner: string, now: Date, leaseMs: number): Promise<QueueDoc | null> {
    return claimLease(this.queues, queueLease, queue, { owner, leaseMs, now: () => now.getTime() });
  }

  /** Lets go of a queue `owner` holds, due again when its (new) first pending delivery is. */
  async releaseQueue(id: string, owner: string): Promise<void> {
    await retryOnConflict('letting go of a delivery queue', async () => {
      const queue = await this.queues.get(id);
      if (!queue || queue.leaseOwner !== owner) return;
      const head = await this.head(id);
      await this.queues.replace({ ...queueLease.write(queue, null), nextAttemptAt: head?.nextAttemptAt ?? null });
    });
  }
}
