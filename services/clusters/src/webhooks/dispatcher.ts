import { randomUUID } from 'node:crypto';
import { createLeaseRunner, type HeldLeases, type LeaseRunner, type Logger } from '@fleetgraph/kit';
import type { AddressPolicy } from './address-policy.js';
import { DestinationError, resolveDestination, systemResolve, type Destination, type Resolve } from './destination.js';
import { noteAttempt, noteDisabled } from './metrics.js';
import { afterFailure, DEFAULT_RETRY, type RetrySettings } from './schedule.js';
import { postDelivery, type SendOptions, type SendResult } from './sender.js';
import { signatureHeaders } from './signing.js';
import {
  DELIVERY_RETENTION_MS,
  type DeliveryDoc,
  type QueueDoc,
  type WebhookDoc,
  type WebhookRepository,
} from './webhook.repo.js';

export interface DispatcherOptions {
  repo: WebhookRepository;
  policy: AddressPolicy;
  log: Logger;
  /** Retries and when to give up. @default DEFAULT_RETRY */
  retry?: RetrySettings;
  /** How long one attempt may take. @default 10000 */
  timeoutMs?: number;
  /** How often the store is looked at for due queues. @default 500 */
  pollMs?: number;
  /** How long a claim on a queue lasts; a replica that dies loses its queues after this. @default 60000 */
  leaseMs?: number;
  /** Queues sent from at once by this replica. @default 16 */
  concurrency?: number;
  /** Tells that a webhook was disabled (a cluster event, say). */
  onDisabled?(webhook: WebhookDoc, delivery: DeliveryDoc): Promise<void>;
  /** Host names to addresses. @default the system resolver */
  resolve?: Resolve;
  /** Sends one attempt. @default postDelivery */
  send?(
    destination: Destination,
    headers: Record<string, string>,
    body: string,
    options: SendOptions,
  ): Promise<SendResult>;
  now?: () => Date;
}

/** Deliveries sent from one queue per claim at most, so that a busy queue does not hold its lease for long. */
const DELIVERIES_PER_CLAIM = 20;

/**
 * Sends queued deliveries: every replica polls the store for due queues, claims each with a lease
 * (kit's lease runner, as the orchestrator does with clusters), sends its deliveries in order
 * until one fails (it is retried after a backoff, and the ones behind it wait), and lets go.
 * A replica that dies mid-attempt leaves the delivery PENDING: once the lease ran out, another
 * sends it again, under the same `webhook-id`.
 */
export class WebhookDispatcher {
  readonly owner = `webhooks-${randomUUID().slice(0, 8)}`;
  private readonly runner: LeaseRunner<QueueDoc>;
  private readonly retry: RetrySettings;
  private readonly now: () => Date;
  private expiredCheckedAt = 0;
  private retentionAt = 0;

  constructor(private readonly o: DispatcherOptions) {
    this.retry = o.retry ?? DEFAULT_RETRY;
    this.now = o.now ?? (() => new Date());
    const leaseMs = o.leaseMs ?? 60_000;
    this.runner = createLeaseRunner<QueueDoc>({
      log: o.log,
      name: 'webhooks',
      idKey: 'queue',
      owner: this.owner,
      sweepMs: o.pollMs ?? 500,
      concurrency: o.concurrency ?? 16,
      now: this.now,
      refill: true,
      findWork: (now, limit, held) => this.due(now, limit, held),
      claim: (queue, owner, now) => o.repo.claimQueue(queue, owner, now, leaseMs),
      run: (queue) => this.drain(queue, leaseMs),
      housekeeping: (now) => this.housekeeping(now),
    });
  }

  start(): void {
    this.runner.start();
  }

  /** Looks for due queues now (a test delivery was queued). */
  poke(): void {
    this.runner.poke();
  }

  /** One sweep, awaited (tests). */
  sweep(): Promise<void> {
    return this.runner.sweep();
  }

  /** Queues being sent from now. */
  get active(): string[] {
    return this.runner.active;
  }

  async stop(): Promise<void> {
    await this.runner.stop();
  }

  private async due(now: Date, limit: number, held: HeldLeases): Promise<QueueDoc[]> {
    const { repo } = this.o;
    const due: QueueDoc[] = [];
    for (const id of held.idle()) {
      const queue = await repo.getQueue(id);
      if (queue?.leaseOwner !== this.owner) held.forget(id);
      else if (queue.nextAttemptAt !== null && queue.nextAttemptAt <= now.toISOString()) due.push(queue);
    }
    if (now.getTime() - this.expiredCheckedAt >= (this.o.pollMs ?? 500)) {
      this.expiredCheckedAt = now.getTime();
      due.push(...(await repo.expiredQueues(now, limit)));
    }
    if (due.length < limit) due.push(...(await repo.dueQueues(now, limit - due.length)));
    return due;
  }

  /** Sends a claimed queue's due deliveries in order, stopping at the first failure, then lets go. */
  private async drain(queue: QueueDoc, leaseMs: number): Promise<void> {
    const started = Date.now();
    try {
      for (let sent = 0; sent < DELIVERIES_PER_CLAIM && Date.now() - started < leaseMs / 2; sent++) {
        const head = await this.o.repo.head(queue.id);
        if (!head || head.nextAttemptAt === null || head.nextAttemptAt > this.now().toISOString()) break;
        if (!(await this.attempt(head))) break;
      }
    } finally {
      await this.o.repo.releaseQueue(queue.id, this.owner);
    }
  }

  /**
   * One attempt at a delivery. @returns whether its queue may go on with the next delivery
   * (this one finished, delivered or failed for good)
   */
  private async attempt(delivery: DeliveryDoc): Promise<boolean> {
    const { repo, log } = this.o;
    const webhook = await repo.get(delivery.webhookId);
    const at = this.now();
    if (!webhook?.enabled) {
      const why = webhook ? `the webhook is disabled: ${webhook.disabledReason ?? ''}` : 'the webhook was deleted';
      await repo.failPending({ queue: delivery.queue }, why, at);
      return false;
    }
    const result = await this.send(webhook, delivery, at);
    const now = this.now();
    const firstAttemptAt = delivery.firstAttemptAt ?? at.toISOString();
    const next: DeliveryDoc = {
      ...delivery,
      attempts: delivery.attempts + 1,
      firstAttemptAt,
      lastAttemptAt: at.toISOString(),
      responseStatus: result.status,
      latencyMs: result.latencyMs,
      error: result.error?.slice(0, 1000) ?? null,
    };
    let finished = result.ok;
    if (result.ok) Object.assign(next, { status: 'SUCCEEDED', nextAttemptAt: null, finishedAt: now.toISOString() });
    else {
      const decision = afterFailure(next.attempts, new Date(firstAttemptAt), now, this.retry);
      if (decision.kind === 'retry') next.nextAttemptAt = decision.at.toISOString();
      else {
        finished = true;
        Object.assign(next, { status: 'FAILED', nextAttemptAt: null, finishedAt: now.toISOString() });
      }
    }
    noteAttempt(delivery.event, result.ok ? 'delivered' : next.status === 'FAILED' ? 'failed' : 'retrying', result);
    try {
      await repo.saveDelivery(next);
    } catch (error) {
      // Failed meanwhile by a webhook being disabled or deleted: nothing more to do here.
      log.warn({ err: error, deliveryId: delivery.id }, 'delivery changed while being sent');
      return false;
    }
    log.info(
      {
        webhookId: webhook.id,
        deliveryId: delivery.id,
        event: delivery.event,
        attempt: next.attempts,
        status: next.status,
        responseStatus: result.status,
        latencyMs: result.latencyMs,
        ...(result.error ? { error: next.error } : {}),
      },
      result.ok
        ? 'webhook delivered'
        : next.status === 'FAILED'
          ? 'webhook delivery failed for good'
          : 'webhook delivery failed; will retry',
    );
    const disabled = await repo.recordOutcome(webhook.id, result.ok, now, this.retry, next.error);
    if (disabled) await this.disabled(disabled, next, now);
    return finished;
  }

  private async send(webhook: WebhookDoc, delivery: DeliveryDoc, at: Date): Promise<SendResult> {
    try {
      const destination = await resolveDestination(
        new URL(webhook.url),
        this.o.policy,
        this.o.resolve ?? systemResolve,
      );
      const headers = signatureHeaders(this.o.repo.signingSecrets(webhook, at), delivery.id, at, delivery.payload);
      return await (this.o.send ?? postDelivery)(destination, headers, delivery.payload, {
        timeoutMs: this.o.timeoutMs ?? 10_000,
      });
    } catch (error) {
      const message = error instanceof DestinationError ? error.message : `could not send: ${(error as Error).message}`;
      return { ok: false, status: null, latencyMs: 0, error: message };
    }
  }

  private async disabled(webhook: WebhookDoc, delivery: DeliveryDoc, now: Date): Promise<void> {
    noteDisabled();
    this.o.log.warn(
      { webhookId: webhook.id, projectId: webhook.projectId, reason: webhook.disabledReason },
      'webhook disabled: its deliveries failed for too long',
    );
    await this.o.repo.failPending(
      { webhookId: webhook.id },
      `the webhook was disabled: ${webhook.disabledReason}`,
      now,
    );
    await this.o
      .onDisabled?.(webhook, delivery)
      .catch((error: unknown) =>
        this.o.log.error({ err: error, webhookId: webhook.id }, 'could not announce a disabled webhook'),
      );
  }

  /** Drops finished deliveries past their retention, once an hour. */
  private async housekeeping(now: Date): Promise<void> {
    if (now.getTime() - this.retentionAt < 3_600_000) return;
    this.retentionAt = now.getTime();
    await this.o.repo.deleteFinishedBefore(new Date(now.getTime() - DELIVERY_RETENTION_MS));
  }
}
