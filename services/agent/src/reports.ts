import { BusError, PayloadSchemaError } from '@fleetgraph/kit/core';
import {
  agentReport,
  simulateAgent,
  type AgentReport,
  type ReportedNode,
  type ReportedUsage,
} from '@fleetgraph/schema';
import type { AgentContext, AgentPart } from './agent.js';
import type { Observation, ObservationSource } from './observe/observation.js';
import { SimulatedObservations, simulatedObservations } from './observe/simulated-observations.js';
import { SimulatedSource } from './simulated.js';

/** The report interval when neither the options nor `AGENT_REPORT_INTERVAL_MS` say otherwise. */
export const DEFAULT_REPORT_INTERVAL_MS = 30_000;

export interface ReportsPartOptions {
  /** How often the agent reports. @default `AGENT_REPORT_INTERVAL_MS` from the environment, else 30 000 */
  intervalMs?: number;
  /**
   * The cluster's observations.
   * @default the simulated cluster of a `SimulatedSource`, or the agent's source itself when it
   * is an `ObservationSource`
   */
  observations?: (ctx: AgentContext) => ObservationSource;
  /** How long one observation may take before the report goes out as a bare heartbeat. @default the interval */
  observeTimeoutMs?: number;
  /**
   * A full report goes out at least every this many reports, compact ones in between when only
   * numbers changed. @default 10
   */
  fullEvery?: number;
}

/**
 * What a full report says beyond the numbers a compact one carries: nodes (names, roles,
 * pools, conditions, capacity) and services. A change of it makes the next two reports full.
 */
export function reportShape(observation: Observation): string | null {
  if (!observation.nodes) return null;
  const nodes = observation.nodes.map(({ usage, requests, pods, ...rest }) => ({ ...rest, measured: usage !== null }));
  return JSON.stringify([nodes, observation.services]);
}

/** The numbers of the nodes, for a compact report. */
export function compactUsage(nodes: readonly ReportedNode[]): ReportedUsage[] {
  return nodes.map((n) => ({
    name: n.name,
    cpuCores: n.usage?.cpuCores ?? null,
    memoryBytes: n.usage?.memoryBytes ?? null,
    diskBytes: n.usage?.diskBytes ?? null,
    cpuRequests: n.requests.cpuCores,
    memoryRequests: n.requests.memoryBytes,
    pods: n.pods,
  }));
}

function intervalFromEnv(): number {
  const value = Number(process.env.AGENT_REPORT_INTERVAL_MS);
  return Number.isSafeInteger(value) && value >= 100 ? value : DEFAULT_REPORT_INTERVAL_MS;
}

const isObservationSource = (value: unknown): value is ObservationSource =>
  typeof value === 'object' && value !== null && typeof (value as ObservationSource).observe === 'function';

/** The observations of an agent's own source: its simulated cluster, or the source itself. */
export function defaultObservations(ctx: AgentContext): ObservationSource {
  if (ctx.source instanceof SimulatedSource) return simulatedObservations(ctx.source, ctx.clusterId);
  if (isObservationSource(ctx.source)) return ctx.source;
  throw new TypeError('the agent source observes nothing: pass `observations` to reportsPart');
}

function timeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`observation took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** How long a burst of changes is let settle before the report they call for goes out. */
export const CHANGE_SETTLE_MS = 200;

/**
 * Reports the cluster every interval on `agentReport` (`agent.v1.<clusterId>.report`, core NATS,
 * validated by the bus before it goes): a heartbeat with the nodes and services observed, and
 * what could not be observed. A failed or slow
 * observation still sends the heartbeat, with null nodes and services and the reason. A change
 * of nodes or services that the source announces (`onChange`) is reported at once, in full.
 *
 * When the observations are simulated it also answers `agent.v1.<clusterId>.simulate`, which
 * sets the faults the simulated cluster plays.
 */
export function reportsPart(options: ReportsPartOptions = {}): AgentPart {
  return (ctx) => {
    const { bus, log, clusterId, tenantId } = ctx;
    const intervalMs = options.intervalMs ?? intervalFromEnv();
    const observeTimeoutMs = options.observeTimeoutMs ?? intervalMs;
    const observations = (options.observations ?? defaultObservations)(ctx);
    const agentStartedAt = new Date().toISOString();
    const fullEvery = Math.max(1, options.fullEvery ?? 10);
    let lastShape: string | null = null;
    let sinceFull = Infinity;
    let repeatFull = false;
    let seq = 0;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let current: Promise<void> | undefined;

    const report = async () => {
      if (observations.silent) return;
      let observation: Observation;
      try {
        observation = await timeout(observations.observe(), observeTimeoutMs);
      } catch (error) {
        observation = {
          nodes: null,
          services: null,
          problems: [`observe: ${(error as Error).message}`.slice(0, 1024)],
        };
      }
      if (stopped) return;
      const shape = reportShape(observation);
      const compact = shape !== null && shape === lastShape && !repeatFull && sinceFull < fullEvery - 1;
      if (compact) sinceFull++;
      else if (shape !== null) {
        // A change is sent in full twice: core NATS may lose one message.
        repeatFull = shape !== lastShape;
        lastShape = shape;
        sinceFull = 0;
      }
      const body: AgentReport = {
        schemaVersion: 1,
        clusterId,
        tenantId,
        source: observations.kind,
        seq: seq++,
        agentStartedAt,
        sentAt: new Date().toISOString(),
        intervalMs,
        ...observation,
        ...(compact ? { nodes: null, services: null, usage: compactUsage(observation.nodes!) } : {}),
      };
      try {
        try {
          bus.send(agentReport, body);
        } catch (error) {
          if (!(error instanceof PayloadSchemaError)) throw error;
          // Never send what the platform would drop: a heartbeat says at least that the agent lives.
          log.error(
            { clusterId, path: error.path, error: error.problem },
            'observation does not fit a report; sending a bare heartbeat',
          );
          bus.send(agentReport, {
            ...body,
            nodes: null,
            services: null,
            problems: [`report: ${error.path}: ${error.problem}`.slice(0, 1024)],
          });
        }
      } catch (error) {
        log.warn({ err: error, clusterId }, 'could not send a report');
      }
    };

    // A report asked for while one is being made goes out right after it.
    let again = false;
    const tick = () => {
      clearTimeout(timer);
      current = report()
        .catch((error) => log.error({ err: error, clusterId }, 'report failed'))
        .finally(() => {
          current = undefined;
          if (stopped) return;
          if (again) {
            again = false;
            tick();
          } else timer = setTimeout(tick, intervalMs);
        });
    };
    tick();

    // A change of nodes or services is reported at once (in full: its shape changed), once the
    // burst of changes it comes in (a list of every node, a pool scaled) has settled.
    let settle: NodeJS.Timeout | undefined;
    const reportSoon = () => {
      if (stopped || settle) return;
      settle = setTimeout(() => {
        settle = undefined;
        if (stopped) return;
        if (current) again = true;
        else tick();
      }, CHANGE_SETTLE_MS);
    };
    const stopListening = observations.onChange?.(reportSoon);

    const control =
      observations instanceof SimulatedObservations
        ? bus.serve(
            simulateAgent,
            async (request) => {
              // A command naming another tenant is not for this cluster: answer as if there were none.
              if (request.tenantId !== tenantId)
                throw new BusError('NOT_FOUND', `no simulated cluster ${clusterId} in this tenant`);
              const faults = observations.simulate(request.faults, request.reset ?? false);
              log.info({ clusterId, faults }, 'simulated faults changed');
              return { faults };
            },
            { tokens: { clusterId }, queue: `agent-${clusterId}` },
          )
        : undefined;

    return {
      async stop() {
        stopped = true;
        clearTimeout(timer);
        clearTimeout(settle);
        stopListening?.();
        control?.unsubscribe();
        await current;
      },
    };
  };
}
