import { BusError } from '@fleetgraph/kit/core';
import { collectLogs, type CollectLogsRequest } from '@fleetgraph/schema';
import type { AgentContext, AgentPart } from '../agent.js';
import { SimulatedSource } from '../simulated.js';
import type { LogSnapshot, LogSource } from './log-source.js';
import { SimulatedLogSource } from './simulated-logs.js';
import { chunkLines, CollectionStoppedError, LogStreamSender } from './stream-sender.js';

export interface LogsPartOptions {
  /**
   * Where the agent reads its cluster's logs; null when it cannot (the agent then refuses).
   * @default the simulated logs of a `SimulatedSource`, none for other sources
   */
  source?: (ctx: AgentContext) => LogSource | null;
  /** Collections the agent runs at once; more are refused with CONFLICT. @default 2 */
  maxConcurrent?: number;
  /** How long the agent waits for credit before it gives the collection up. @default 60000 */
  creditTimeoutMs?: number;
  /** Called when a collection ends, for tests and metrics. */
  onFinished?: (outcome: { bundleId: string; ok: boolean; error?: string }) => void;
}

const defaultSource = (ctx: AgentContext): LogSource | null =>
  ctx.source instanceof SimulatedSource ? new SimulatedLogSource(ctx.source) : null;

/**
 * Answers `agent.v1.<clusterId>.collect-logs` for the agent's own cluster: accepts at once, then
 * streams the selected logs and the manifest's resources to the logs service under its flow
 * control (see schema/src/contracts/logs.ts).
 */
export function createLogsPart(options: LogsPartOptions = {}): AgentPart {
  const maxConcurrent = options.maxConcurrent ?? 2;
  const creditTimeoutMs = options.creditTimeoutMs ?? 60_000;
  return (ctx) => {
    const { bus, log, clusterId, tenantId } = ctx;
    const source = (options.source ?? defaultSource)(ctx);
    const running = new Map<string, { sender: LogStreamSender; done: Promise<void> }>();

    const subscription = bus.serve(
      collectLogs,
      async (request) => {
        // A command naming another tenant or cluster is not for this agent.
        if (request.tenantId !== tenantId || request.clusterId !== clusterId)
          throw new BusError('NOT_FOUND', 'not this cluster');
        if (!source) throw new BusError('CONFLICT', 'this agent has no log source');
        if (running.size >= maxConcurrent)
          throw new BusError('CONFLICT', `the agent is already collecting ${running.size} log bundles`);
        if (running.has(request.stream.id)) throw new BusError('CONFLICT', 'this collection is running already');
        const snapshot = source.open({
          parts: request.parts,
          tailLines: request.nodeLogLines,
          namespaceSince: new Date(request.namespaceSince),
        });
        // Subscribed to credit before the reply leaves, so that no credit can be missed.
        const sender = new LogStreamSender(bus, {
          clusterId: request.clusterId,
          streamId: request.stream.id,
          window: request.stream.window,
          creditTimeoutMs,
        });
        const done = stream(snapshot, sender, request)
          .then(
            () => options.onFinished?.({ bundleId: request.bundleId, ok: true }),
            (error: unknown) => {
              const message = error instanceof Error ? error.message : String(error);
              if (error instanceof CollectionStoppedError)
                log.warn({ clusterId, bundleId: request.bundleId, reason: message }, 'log collection stopped');
              else {
                log.error({ err: error, clusterId, bundleId: request.bundleId }, 'log collection failed');
                sender.fail(`the agent could not collect the logs: ${message}`);
              }
              options.onFinished?.({ bundleId: request.bundleId, ok: false, error: message });
            },
          )
          .finally(() => {
            sender.close();
            running.delete(request.stream.id);
          });
        running.set(request.stream.id, { sender, done });
        log.info({ clusterId, bundleId: request.bundleId, parts: request.parts }, 'collecting logs');
        return { accepted: true as const, nodes: snapshot.nodes };
      },
      { tokens: { clusterId }, queue: `agent-${clusterId}` },
    );

    return {
      async stop() {
        subscription.unsubscribe();
        for (const { sender } of running.values()) sender.stop('the agent is stopping');
        await Promise.allSettled([...running.values()].map((r) => r.done));
      },
    };
  };
}

/** Sends every file in pieces, then the resources, then the end marker. */
async function stream(snapshot: LogSnapshot, sender: LogStreamSender, request: CollectLogsRequest): Promise<void> {
  // Yield once, so that the reply (accepted) leaves before the first piece of data.
  await new Promise((resolve) => setImmediate(resolve));
  let files = 0;
  let resources = 0;
  for await (const file of snapshot.files()) {
    let pending: string | null = null;
    for await (const data of chunkLines(file.lines(), request.stream.chunkBytes)) {
      if (pending !== null) await sender.send({ type: 'file', path: file.path, data: pending, last: false });
      pending = data;
    }
    await sender.send({ type: 'file', path: file.path, data: pending ?? '', last: true });
    files++;
  }
  for await (const resource of snapshot.resources()) {
    await sender.send({ type: 'resource', resource });
    resources++;
  }
  await sender.send({ type: 'end', files, resources });
}

/** The logs part as the local cloud's simulated agents run it. */
export const logsPart: AgentPart = createLogsPart();
