import type { Bus, Logger } from '@fleetgraph/kit/core';
import { applyPacks } from '@fleetgraph/schema';
import type { AgentSource } from './source.js';

/** What every part of an agent gets: its cluster, its tenant, the bus and its observations. */
export interface AgentContext {
  bus: Bus;
  log: Logger;
  clusterId: string;
  tenantId: string;
  source: AgentSource;
}

/**
 * One capability of the agent (answering pack installs, reporting heartbeats, collecting
 * logs, ...): started with the agent, stopped with it.
 */
export type AgentPart = (ctx: AgentContext) => { stop(): Promise<void> | void };

export interface AgentOptions extends AgentContext {
  /** Parts beyond pack installs, e.g. reports and log collection. */
  parts?: readonly AgentPart[];
}

export interface RunningAgent {
  clusterId: string;
  stop(): Promise<void>;
}

/** Answers `agent.v1.<clusterId>.apply-packs` for the agent's own cluster. */
export const packsPart: AgentPart = ({ bus, clusterId, tenantId, source, log }) => {
  const subscription = bus.serve(
    applyPacks,
    async (request) => {
      // A command naming another tenant is not for this cluster.
      if (request.tenantId !== tenantId)
        return {
          installed: [],
          failed: request.packs.map((p) => ({ name: p.name, version: p.version, message: 'not this cluster' })),
        };
      const result = await source.applyPacks(request.packs);
      log.info({ clusterId, installed: result.installed.length, failed: result.failed.length }, 'packs applied');
      return result;
    },
    { tokens: { clusterId }, queue: `agent-${clusterId}` },
  );
  return { stop: () => subscription.unsubscribe() };
};

/** Starts the management agent of one cluster with its parts. */
export function startAgent(options: AgentOptions): RunningAgent {
  const { parts = [], ...ctx } = options;
  const running = [packsPart, ...parts].map((part) => part(ctx));
  return {
    clusterId: ctx.clusterId,
    async stop() {
      await Promise.all(running.map((r) => r.stop()));
    },
  };
}
