import { randomUUID } from 'node:crypto';
import type { Bus, Logger } from '@fleetgraph/kit';
import { clusterConditions, clusterEvent, clusterLifecycle } from '@fleetgraph/schema';
import { StaleWriteError, type ClusterRepository, type ClusterStatus } from '../adapters/cluster.repo.js';
import type { ProviderRegistry } from '../adapters/providers.js';
import { backoffMs } from '../domain/backoff.js';
import { sameConditions } from '../domain/conditions.js';
import type { ClusterSpec } from '../domain/cluster.js';
import type { EventNote, Scope } from './phases.js';
import { reconcileStep } from './reconcile.js';

export interface OrchestratorOptions {
  repo: ClusterRepository;
  providers: ProviderRegistry;
  bus: Bus;
  log: Logger;
  /** How often the store is asked for due clusters. @default 250 */
  pollMs?: number;
  /** Requeue delay while something is in progress. @default 1000 */
  progressMs?: number;
  /** Drift check interval for converged clusters. @default 30000 */
  resyncMs?: number;
  /** Backoff after failures. @default base 1000, cap 60000 */
  backoff?: { baseMs: number; capMs: number };
  /** How long a claim on a cluster lasts; a replica that dies loses its clusters after this. @default 60000 */
  leaseMs?: number;
  /** Clusters reconciled at once by this replica. @default 16 */
  concurrency?: number;
  now?: () => Date;
}

/** Counters, for benchmarks and tests. */
export interface OrchestratorStats {
  steps: number;
  failures: number;
  cpuMicros: number;
}

/**
 * Reconciles clusters in the Kubernetes controller style. Every replica polls the store for
 * due clusters and claims each with a lease before one step, so a cluster is reconciled by one
 * replica at a time and a dead replica's clusters are taken over when its leases expire.
 */
export class Orchestrator {
  readonly owner = `orchestrator-${randomUUID().slice(0, 8)}`;
  readonly stats: OrchestratorStats = { steps: 0, failures: 0, cpuMicros: 0 };
  private readonly inflight = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;
  private readonly o: Required<Omit<OrchestratorOptions, 'now'>> & { now: () => Date };

  constructor(options: OrchestratorOptions) {
    this.o = {
      pollMs: 250,
      progressMs: 1000,
      resyncMs: 30_000,
      backoff: { baseMs: 1000, capMs: 60_000 },
      leaseMs: 60_000,
      concurrency: 16,
      now: () => new Date(),
      ...options,
    };
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.o.pollMs);
    void this.tick();
  }

  /** Looks for due clusters now (after a mutation, rather than at the next poll). */
  poke(): void {
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled(this.running);
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      const free = this.o.concurrency - this.inflight.size;
      if (free <= 0) return;
      const due = await this.o.repo.due(this.o.now(), free + this.inflight.size);
      for (const status of due) {
        if (this.inflight.size >= this.o.concurrency) break;
        if (this.inflight.has(status.id)) continue;
        this.inflight.add(status.id);
        const work = this.run(status).finally(() => {
          this.inflight.delete(status.id);
          this.running.delete(work);
        });
        this.running.add(work);
      }
    } catch (error) {
      this.o.log.error({ err: error }, 'could not list due clusters');
    } finally {
      this.ticking = false;
    }
  }

  private async run(candidate: ClusterStatus & { version: number }): Promise<void> {
    const { repo, log } = this.o;
    const claimed = await repo.claim(candidate, this.owner, this.o.now(), this.o.leaseMs).catch((error: unknown) => {
      log.error({ err: error, clusterId: candidate.id }, 'claim failed');
      return null;
    });
    if (!claimed) return;
    const stored = await repo.getSpec(claimed.id);
    if (!stored) return;
    try {
      await this.step(stored.spec, claimed);
    } catch (error) {
      if (error instanceof StaleWriteError) log.warn({ clusterId: claimed.id, err: error }, 'lost the cluster to another replica');
      else log.error({ err: error, clusterId: claimed.id }, 'reconcile step crashed');
    }
    if (!this.stopped) setImmediate(() => void this.tick());
  }

  private async step(spec: ClusterSpec, claimed: ClusterStatus & { version: number }): Promise<void> {
    const { repo } = this.o;
    const started = process.cpuUsage();
    let current = claimed;
    const before = { phase: claimed.phase, conditions: claimed.conditions };
    const scope: Scope = {
      spec,
      status: structuredClone(stripVersion(claimed)),
      events: [],
      persist: async () => {
        current = await repo.saveStatus({ ...scope.status, version: current.version }, this.owner);
      },
    };
    const outcome = await reconcileStep({ providers: this.o.providers, bus: this.o.bus, log: this.o.log, pollMs: this.o.progressMs }, scope, this.o.now);
    const now = this.o.now();
    const status = scope.status;
    status.failures = outcome.kind === 'failed' ? status.failures + 1 : 0;
    const delay =
      outcome.kind === 'failed' ? backoffMs(status.failures, this.o.backoff) : outcome.kind === 'progress' ? outcome.requeueMs : outcome.kind === 'converged' ? this.o.resyncMs : null;
    status.nextReconcileAt = delay === null ? null : new Date(now.getTime() + delay).toISOString();
    status.leaseOwner = null;
    status.leaseUntil = null;
    // Events are stored before the status that results from them, so a reader who sees the
    // status also finds its events.
    await this.record(spec, scope.events, now).catch((error: unknown) => this.o.log.error({ err: error, clusterId: spec.id }, 'could not record events'));
    await repo.saveStatus({ ...status, version: current.version }, this.owner);
    const cpu = process.cpuUsage(started);
    this.stats.steps++;
    this.stats.cpuMicros += cpu.user + cpu.system;
    if (outcome.kind === 'failed') this.stats.failures++;
    await this.publish(spec, before, status);
  }

  /**
   * Publishes the step's events to JetStream, whose sequence is each event's cursor, and keeps
   * them in the store (the last 1000 per cluster) for `Cluster.events`.
   */
  private async record(spec: ClusterSpec, notes: EventNote[], now: Date): Promise<void> {
    const { repo, bus } = this.o;
    for (const note of notes) {
      const event = { tenantId: spec.tenantId, clusterId: spec.id, time: now.toISOString(), ...note };
      const { seq } = await bus.publish(clusterEvent, event, { msgId: randomUUID() });
      await repo.appendEvent(event, seq);
    }
    if (notes.length) await repo.trimEvents(spec.id);
  }

  /** Publishes the new conditions and phase if they changed. */
  private async publish(spec: ClusterSpec, before: Pick<ClusterStatus, 'phase' | 'conditions'>, status: ClusterStatus) {
    const { bus, log } = this.o;
    try {
      const changed = before.phase !== status.phase || !sameConditions(before.conditions, status.conditions);
      if (changed) {
        await bus.publish(clusterConditions, { tenantId: spec.tenantId, clusterId: spec.id, phase: status.phase, conditions: status.conditions });
      }
      if (before.phase !== status.phase) {
        await bus.publish(clusterLifecycle, {
          id: spec.id,
          tenantId: spec.tenantId,
          projectId: spec.projectId,
          name: spec.name,
          phase: status.phase,
          cloud: { type: spec.cloud.type, region: spec.cloud.region },
          nodePools: spec.nodePools.map((p) => ({ name: p.name, role: p.role, count: p.count })),
        });
      }
    } catch (error) {
      log.error({ err: error, clusterId: spec.id }, 'could not record or publish events');
    }
  }
}

function stripVersion(status: ClusterStatus & { version: number }): ClusterStatus {
  const { version: _v, ...rest } = status;
  return rest;
}
