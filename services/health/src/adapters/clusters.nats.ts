import type { Bus, Logger } from '@fleetgraph/kit';
import { CLUSTER_STATE_STREAM, clusterLifecycle } from '@fleetgraph/schema';
import type { ConsumerMessages } from 'nats';
import type { ClusterRegistry } from '../ingest/registry.js';

const decoder = new TextDecoder();

export interface ClusterFollower {
  /** Resolves once every lifecycle event retained when following started has been applied. */
  readonly caughtUp: Promise<void>;
  readonly isCaughtUp: boolean;
  /** Lifecycle events that did not parse. */
  readonly malformed: number;
  stop(): Promise<void>;
}

export interface FollowOptions {
  bus: Bus;
  registry: ClusterRegistry;
  log: Logger;
  /** Called after a cluster was deleted (to forget its data). */
  onRemoved(clusterId: string): void;
  /** How long to wait for the clusters service's stream to exist between tries. @default 1000 */
  retryMs?: number;
}

/**
 * Follows `clusters.v1.lifecycle.>` into the registry. The stream keeps the last event per
 * cluster, so replaying it from the start gives every cluster that exists; an ordered consumer
 * (no durable state, one per replica) does that, then stays live. Every replica needs every
 * cluster, so no work is shared here.
 */
export async function followClusters(options: FollowOptions): Promise<ClusterFollower> {
  const { bus, registry, log } = options;
  let stopped = false;
  let messages: ConsumerMessages | undefined;
  let caughtUp = false;
  let malformed = 0;
  let markCaughtUp!: () => void;
  const caughtUpPromise = new Promise<void>((resolve) => (markCaughtUp = resolve)).then(() => {
    caughtUp = true;
  });

  const apply = (data: Uint8Array, subject: string) => {
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(data));
    } catch {
      value = undefined;
    }
    const parsed = clusterLifecycle.schema.safeParse(value);
    if (!parsed.success) {
      malformed++;
      log.warn({ subject }, 'malformed cluster lifecycle event ignored');
      return;
    }
    if (registry.apply(parsed.data) === 'removed') options.onRemoved(parsed.data.id);
  };

  const loop = (async () => {
    while (!stopped) {
      try {
        // One filter as a string: an array asks for multi-filter consumers, which nats-server 2.9 lacks (the call never returns).
        const consumer = await bus.jetstream.consumers.get(CLUSTER_STATE_STREAM.name, { filterSubjects: clusterLifecycle.filter() });
        messages = await consumer.consume({ max_messages: 1024 });
        const info = await consumer.info();
        if (info.num_pending === 0 && info.delivered.stream_seq === 0) markCaughtUp();
        for await (const message of messages) {
          apply(message.data, message.subject);
          if (message.info.pending === 0) markCaughtUp();
        }
      } catch (error) {
        if (stopped) break;
        log.warn({ err: error }, 'cannot follow cluster lifecycle events yet; retrying');
        await new Promise((resolve) => setTimeout(resolve, options.retryMs ?? 1000));
      }
    }
  })();

  return {
    caughtUp: caughtUpPromise,
    get isCaughtUp() {
      return caughtUp;
    },
    get malformed() {
      return malformed;
    },
    async stop() {
      stopped = true;
      messages?.stop();
      await loop;
    },
  };
}
