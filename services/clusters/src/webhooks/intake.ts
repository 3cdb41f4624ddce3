import type { Bus, Consumption, Delivery, EventDef, Logger } from '@fleetgraph/kit';
import {
  clusterConditions,
  clusterEvent,
  clusterHealthChanged,
  clusterLifecycle,
  logBundleChanged,
} from '@fleetgraph/schema';
import {
  conditionsEvent,
  deliveryBody,
  healthEvent,
  logBundleEvent,
  phaseEvent,
  warningEvent,
  type EventOrigin,
  type WebhookEvent,
} from './events.js';
import type { WebhookRepository } from './webhook.repo.js';

/** Where a cluster belongs, for events that do not say (null when unknown or of another tenant). */
export type ProjectOf = (tenantId: string, clusterId: string) => Promise<string | null>;

export interface IntakeOptions {
  bus: Bus;
  repo: WebhookRepository;
  projectOf: ProjectOf;
  log: Logger;
  /**
   * How long a delivery waits after its event was stored, so that an earlier event of the same
   * cluster read from another stream (or by another replica) a little later still goes first.
   * @default 1000
   */
  orderWindowMs?: number;
  /** How long to wait before trying again while a stream does not exist yet. @default 1000 */
  retryMs?: number;
  now?: () => Date;
}

interface Source<P> {
  def: EventDef<P>;
  durable: string;
  map(payload: P, origin: EventOrigin): WebhookEvent | null;
}

const source = <P>(def: EventDef<P>, durable: string, map: Source<P>['map']): Source<unknown> =>
  ({ def, durable, map }) as Source<unknown>;

/**
 * The streams webhooks deliver from, each read through a durable consumer that the clusters
 * service's replicas share (a message goes to one replica), from the events published after the
 * consumer was first made. The health and logs services own their streams: their consumers start
 * once those exist.
 */
const SOURCES: readonly Source<unknown>[] = [
  source(clusterLifecycle, 'clusters-webhooks-phases', phaseEvent),
  source(clusterConditions, 'clusters-webhooks-conditions', conditionsEvent),
  source(clusterEvent, 'clusters-webhooks-events', warningEvent),
  source(clusterHealthChanged, 'clusters-webhooks-health', healthEvent),
  source(logBundleChanged, 'clusters-webhooks-log-bundles', logBundleEvent),
];

export interface WebhookIntake {
  /** Resolves once every consumer runs (tests). */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Turns platform events into queued deliveries: each event, for every enabled webhook of its
 * project that takes its type, one delivery in the queue of that webhook and cluster (once: a
 * message read again finds its delivery queued). A failure (the store away) leaves the message
 * unacknowledged, and JetStream delivers it again.
 */
export function startWebhookIntake(options: IntakeOptions): WebhookIntake {
  const { bus, repo, log } = options;
  const orderWindowMs = options.orderWindowMs ?? 1000;
  const now = options.now ?? (() => new Date());
  const consumptions: Consumption[] = [];
  let stopped = false;

  async function route(event: WebhookEvent): Promise<void> {
    const projectId =
      event.projectId ?? (event.clusterId ? await options.projectOf(event.tenantId, event.clusterId) : null);
    if (!projectId) return;
    const webhooks = await repo.subscribers(event.tenantId, projectId, event.type, event.time);
    if (webhooks.length === 0) return;
    const payload = deliveryBody(event, projectId);
    const at = now();
    const dueAt = new Date(Math.max(at.getTime(), event.time.getTime() + orderWindowMs));
    for (const webhook of webhooks) {
      await repo.enqueue(
        webhook,
        { clusterId: event.clusterId, source: event.source, event: event.type, order: event.order, payload, dueAt },
        at,
      );
    }
  }

  async function consume(s: Source<unknown>): Promise<void> {
    while (!stopped) {
      try {
        // A durable consumer of a stream that does not exist yet cannot be made: wait for it.
        await bus.streamState(s.def.stream);
        const consumption = await bus.consume(s.def, {
          durable: s.durable,
          deliver: 'new',
          maxDeliver: 10,
          handle: async (delivery: Delivery<unknown>) => {
            const event = s.map(delivery.payload, { stream: s.def.stream, seq: delivery.seq, time: delivery.time });
            if (event) await route(event);
          },
        });
        if (stopped) await consumption.stop();
        else consumptions.push(consumption);
        return;
      } catch (error) {
        if (stopped) return;
        log.debug({ err: error, stream: s.def.stream }, 'webhook events cannot be consumed yet; retrying');
        await new Promise((resolve) => setTimeout(resolve, options.retryMs ?? 1000));
      }
    }
  }

  const ready = Promise.all(SOURCES.map(consume)).then(() => undefined);
  return {
    ready,
    async stop() {
      stopped = true;
      await Promise.all(consumptions.map((c) => c.stop()));
    },
  };
}
