import { randomUUID } from 'node:crypto';
import type { Bus, Logger, Outbox, Write } from '@fleetgraph/kit';
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
  /** Where the step's events, conditions and lifecycle changes go, with the status that results from them. */
  outbox: Outbox;
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
  /** Reconcile steps taken. */
  steps: number;
  /** Steps that ended in a failure (retried with backoff). */
  failures: number;
  /**
   * Process CPU time (user + system, µs) while at least one step was in flight: read when the
   * replica turns busy and when it turns idle, so that overlapping steps are counted once. It
   * includes whatever else the process did meanwhile (serving GraphQL, say).
   */
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
  /** Clusters whose lease this replica took and has not released yet (in flight, or left by a crashed step). */
  private readonly held = new Set<string>();
  /** Process CPU when the replica last turned busy (nothing in flight before). */
  private busySince: NodeJS.CpuUsage | undefined;
  private readonly running = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private tickScheduled = false;
  /** When this replica last looked for clusters whose lease ran out (ms since the epoch). */
  private expiredCheckedAt = 0;
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
      const now = this.o.now();
      const due = await this.heldDue(now);
      // Clusters of a replica that died: leases run out on the scale of `leaseMs`, so one look
      // per poll finds them soon enough. They go first: each has been due for at least that long.
      if (now.getTime() - this.expiredCheckedAt >= this.o.pollMs) {
        this.expiredCheckedAt = now.getTime();
        due.push(...(await this.o.repo.expiredLeases(now, free)));
      }
      if (due.length < free) due.push(...(await this.o.repo.due(now, free - due.length)));
      for (const status of due) {
        if (this.inflight.size >= this.o.concurrency) break;
        if (this.inflight.has(status.id)) continue;
        if (this.inflight.size === 0) this.busySince = process.cpuUsage();
        this.inflight.add(status.id);
        const work = this.run(status).finally(() => {
          this.inflight.delete(status.id);
          this.running.delete(work);
          if (this.inflight.size === 0 && this.busySince) {
            const cpu = process.cpuUsage(this.busySince);
            this.stats.cpuMicros += cpu.user + cpu.system;
            this.busySince = undefined;
          }
        });
        this.running.add(work);
      }
    } catch (error) {
      this.o.log.error({ err: error }, 'could not list due clusters');
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Due clusters that this replica still holds after a step that did not release them (it
   * crashed, or found no spec). The store's due list leaves every leased cluster out, so these
   * are looked up by id, to be retried at once rather than when their lease runs out.
   */
  private async heldDue(now: Date): Promise<(ClusterStatus & { version: number })[]> {
    if (this.held.size === 0) return [];
    const due: (ClusterStatus & { version: number })[] = [];
    for (const id of this.held) {
      if (this.inflight.has(id)) continue;
      const status = await this.o.repo.getStatus(id);
      if (status?.leaseOwner !== this.owner) this.held.delete(id);
      else if (status.nextReconcileAt !== null && status.nextReconcileAt <= now.toISOString()) due.push(status);
    }
    return due;
  }

  private async run(candidate: ClusterStatus & { version: number }): Promise<void> {
    const { repo, log } = this.o;
    const claimed = await repo.claim(candidate, this.owner, this.o.now(), this.o.leaseMs).catch((error: unknown) => {
      log.error({ err: error, clusterId: candidate.id }, 'claim failed');
      return null;
    });
    if (!claimed) return;
    this.held.add(claimed.id);
    const stored = await repo.getSpec(claimed.id);
    if (!stored) return;
    try {
      await this.step(stored.spec, claimed);
      this.held.delete(claimed.id);
    } catch (error) {
      if (error instanceof StaleWriteError) {
        this.held.delete(claimed.id);
        log.warn({ clusterId: claimed.id, err: error }, 'lost the cluster to another replica');
      } else log.error({ err: error, clusterId: claimed.id }, 'reconcile step crashed');
    }
    this.tickSoon();
  }

  /** Fills freed slots on the next turn of the event loop: steps that end in the same turn share one look at the store. */
  private tickSoon(): void {
    if (this.tickScheduled || this.stopped) return;
    this.tickScheduled = true;
    setImmediate(() => {
      this.tickScheduled = false;
      void this.tick();
    });
  }

  private async step(spec: ClusterSpec, claimed: ClusterStatus & { version: number }): Promise<void> {
    const { repo } = this.o;
    let current = claimed;
    const before = { phase: claimed.phase, conditions: claimed.conditions };
    const scope: Scope = {
      spec,
      // A shallow copy is enough: `claimed` is this step's own (parsed from the store), and
      // the conditions kept in `before` are never changed in place (setCondition makes a new list).
      status: stripVersion(claimed),
      events: [],
      // The draft and the events noted so far, together: what the cloud is about to be asked
      // for is on record, and announced once, whatever happens to this step.
      persist: async () => {
        const events = this.eventWrites(spec, scope.events.splice(0), this.o.now());
        current = await repo.saveStatus({ ...scope.status, version: current.version }, this.owner, events);
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
    // The status, the events that led to it and the state change for watchers, in one write:
    // the outbox publishes them to JetStream (whose sequence is each event's cursor) in this
    // order, however long NATS is away.
    const announcements = [...this.eventWrites(spec, scope.events, now), ...this.stateWrites(spec, before, status)];
    await repo.saveStatus({ ...status, version: current.version }, this.owner, announcements);
    this.stats.steps++;
    if (outcome.kind === 'failed') this.stats.failures++;
  }

  private eventWrites(spec: ClusterSpec, notes: readonly EventNote[], now: Date): Write[] {
    const time = now.toISOString();
    return notes.map((note) => this.o.outbox.add(clusterEvent, { tenantId: spec.tenantId, clusterId: spec.id, time, ...note }, { key: spec.id }));
  }

  /** The new conditions and phase for watchers, if they changed. */
  private stateWrites(spec: ClusterSpec, before: Pick<ClusterStatus, 'phase' | 'conditions'>, status: ClusterStatus): Write[] {
    const { outbox } = this.o;
    const writes: Write[] = [];
    if (before.phase !== status.phase || !sameConditions(before.conditions, status.conditions)) {
      writes.push(outbox.add(clusterConditions, { tenantId: spec.tenantId, clusterId: spec.id, phase: status.phase, conditions: status.conditions }, { key: spec.id }));
    }
    if (before.phase !== status.phase) {
      writes.push(
        outbox.add(
          clusterLifecycle,
          {
            id: spec.id,
            tenantId: spec.tenantId,
            projectId: spec.projectId,
            name: spec.name,
            phase: status.phase,
            cloud: { type: spec.cloud.type, region: spec.cloud.region },
            nodePools: spec.nodePools.map((p) => ({ name: p.name, role: p.role, count: p.count })),
          },
          { key: spec.id },
        ),
      );
    }
    return writes;
  }
}

function stripVersion(status: ClusterStatus & { version: number }): ClusterStatus {
  const { version: _v, ...rest } = status;
  return rest;
}
