import { randomUUID } from 'node:crypto';
import {
  annotateActiveSpan,
  contextOf,
  createLeaseRunner,
  failActiveSpan,
  inSpan,
  type HeldLeases,
  type LeaseRunner,
  type Logger,
} from '@fleetgraph/kit';
import { backoffMs } from '../domain/backoff.js';
import type { ClusterSpec } from '../domain/cluster.js';
import { sameConditions, withNextAttempt } from '../domain/conditions.js';
import { fleetEntry } from '../domain/fleet.js';
import { StaleWriteError } from '../domain/errors.js';
import { statusLease, type ClusterStatus, type VersionedStatus } from '../domain/status.js';
import type { EventNote, Scope } from './phases.js';
import type { Announcement, CloudProviders, ClusterRequests, ClusterStatusStore, NodeBootstrapper } from './ports.js';
import { timeStep } from './metrics.js';
import { reconcileStep } from './reconcile.js';

export interface OrchestratorOptions {
  /** Where definitions and statuses are kept and claimed (adapters/cluster.repo.ts). */
  repo: ClusterStatusStore;
  /** The cloud providers (adapters/providers.ts). */
  providers: CloudProviders;
  /** The profiles and images services and the clusters' agents (adapters/cluster.requests.ts). */
  requests: ClusterRequests;
  /** Machines' user data (adapters/bootstrap.ts). @default none: machines boot without user data */
  bootstrap?: NodeBootstrapper;
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
 * due clusters and claims each with a lease before one step (kit's lease runner), so a cluster is
 * reconciled by one replica at a time and a dead replica's clusters are taken over when its
 * leases expire.
 */
export class Orchestrator {
  readonly owner = `orchestrator-${randomUUID().slice(0, 8)}`;
  readonly stats: OrchestratorStats = { steps: 0, failures: 0, cpuMicros: 0 };
  /** Process CPU when the replica last turned busy (nothing in flight before). */
  private busySince: NodeJS.CpuUsage | undefined;
  /** When this replica last looked for clusters whose lease ran out (ms since the epoch). */
  private expiredCheckedAt = 0;
  private readonly runner: LeaseRunner<VersionedStatus>;
  private readonly o: Required<Omit<OrchestratorOptions, 'now' | 'bootstrap'>> & {
    now: () => Date;
    bootstrap?: NodeBootstrapper;
  };

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
    this.runner = createLeaseRunner<VersionedStatus>({
      log: this.o.log,
      name: 'reconcile',
      idKey: 'clusterId',
      owner: this.owner,
      sweepMs: this.o.pollMs,
      concurrency: this.o.concurrency,
      now: this.o.now,
      // Steps that end in the same turn of the event loop share one look at the store.
      refill: true,
      findWork: (now, limit, held) => this.due(now, limit, held),
      claim: (status, owner, now) => this.o.repo.claim(status, owner, now, this.o.leaseMs),
      run: (claimed) => this.reconcile(claimed),
      // A step holds its cluster as long as it runs (an Azure VM is made in minutes): its lease
      // is renewed every third of leaseMs, so that no other replica takes the cluster meanwhile.
      renew: {
        leaseMs: this.o.leaseMs,
        ids: () => this.runner.active,
        renew: (id, lease) => this.o.repo.renewLease(id, lease),
      },
      isLeaseLost: (error) => error instanceof StaleWriteError,
      onBusy: () => (this.busySince = process.cpuUsage()),
      onIdle: () => {
        if (!this.busySince) return;
        const cpu = process.cpuUsage(this.busySince);
        this.stats.cpuMicros += cpu.user + cpu.system;
        this.busySince = undefined;
      },
    });
  }

  start(): void {
    this.runner.start();
  }

  /** Clusters due and held by no replica: waiting for a free slot (0 when the store cannot tell). */
  async queueDepth(): Promise<number> {
    return (await this.o.repo.backlog?.(this.o.now())) ?? 0;
  }

  /** Clusters this replica is reconciling now. */
  get inFlight(): number {
    return this.runner.active.length;
  }

  /** Looks for due clusters now (after a mutation, rather than at the next poll). */
  poke(): void {
    this.runner.poke();
  }

  async stop(): Promise<void> {
    await this.runner.stop();
  }

  /**
   * Due clusters, in this order: those this replica still holds after a step that did not let
   * go (it crashed, or found no spec), looked up by id since the store's due list leaves every
   * leased cluster out; a dead replica's (leases run out on the scale of `leaseMs`, so one look
   * per poll finds them soon enough, and each has been due for at least that long); the rest.
   */
  private async due(now: Date, limit: number, held: HeldLeases): Promise<VersionedStatus[]> {
    const { repo, pollMs } = this.o;
    const due: VersionedStatus[] = [];
    for (const id of held.idle()) {
      const status = await repo.getStatus(id);
      if (status?.leaseOwner !== this.owner) held.forget(id);
      else if (status.nextReconcileAt !== null && status.nextReconcileAt <= now.toISOString()) due.push(status);
    }
    if (now.getTime() - this.expiredCheckedAt >= pollMs) {
      this.expiredCheckedAt = now.getTime();
      due.push(...(await repo.expiredLeases(now, limit)));
    }
    if (due.length < limit) due.push(...(await repo.due(now, limit - due.length)));
    return due;
  }

  /**
   * One step of a claimed cluster; without a definition (yet) the lease is kept and the cluster
   * looked at again when due.
   */
  private async reconcile(claimed: VersionedStatus): Promise<'hold' | undefined> {
    const stored = await this.o.repo.getSpec(claimed.id);
    if (!stored) return 'hold';
    // A span per step, in the trace of the request that made the cluster due (see ClusterStatus.trace).
    await inSpan(
      'reconcile',
      {
        parent: contextOf(claimed.trace),
        attributes: { 'fleetgraph.cluster.id': claimed.id, 'fleetgraph.cluster.phase': claimed.phase },
      },
      () => this.step(stored.spec, claimed),
    );
  }

  private async step(spec: ClusterSpec, claimed: VersionedStatus): Promise<void> {
    const { repo } = this.o;
    let current = claimed;
    /** The due time a user's wake set while this step ran (the step's last write keeps it if earlier). */
    let woken = null as string | null;
    const before = {
      phase: claimed.phase,
      conditions: claimed.conditions,
      observedGeneration: claimed.observedGeneration,
    };
    const timed = timeStep(claimed.phase);
    const scope: Scope = {
      spec,
      // A shallow copy is enough: `claimed` is this step's own (parsed from the store), and
      // the conditions kept in `before` are never changed in place (setCondition makes a new list).
      status: stripVersion(claimed),
      events: [],
      // The draft and the events noted so far, together: what the cloud is about to be asked
      // for is on record, and announced once, whatever happens to this step.
      persist: async () => {
        const events = this.eventAnnouncements(spec, scope.events.splice(0), this.o.now());
        current = await repo.saveStatus({ ...scope.status, version: current.version }, this.owner, events, current);
        // What a wake or a renewal changed meanwhile stays in the draft, for the writes to come.
        if (current.nextReconcileAt !== scope.status.nextReconcileAt) {
          woken = current.nextReconcileAt;
          Object.assign(scope.status, { nextReconcileAt: woken, failures: 0, trace: current.trace ?? null });
        }
        scope.status.leaseUntil = current.leaseUntil;
      },
    };
    const outcome = await reconcileStep(
      {
        providers: this.o.providers,
        requests: this.o.requests,
        bootstrap: this.o.bootstrap,
        log: this.o.log,
        pollMs: this.o.progressMs,
      },
      scope,
      this.o.now,
    );
    const now = this.o.now();
    // The step's last write lets go of the lease.
    const status = statusLease.write(scope.status, null);
    status.failures = outcome.kind === 'failed' ? status.failures + 1 : 0;
    const delay =
      outcome.kind === 'failed'
        ? backoffMs(status.failures, this.o.backoff)
        : outcome.kind === 'progress'
          ? outcome.requeueMs
          : outcome.kind === 'converged'
            ? this.o.resyncMs
            : null;
    status.nextReconcileAt = delay === null ? null : new Date(now.getTime() + delay).toISOString();
    if (woken !== null && status.nextReconcileAt !== null && woken < status.nextReconcileAt)
      status.nextReconcileAt = woken;
    status.conditions = withNextAttempt(status.conditions, status.nextReconcileAt);
    annotateActiveSpan({ 'fleetgraph.reconcile.result': outcome.kind, 'fleetgraph.cluster.phase_after': status.phase });
    if (outcome.kind === 'failed') {
      const failed = status.conditions.find((c) => c.failed);
      failActiveSpan(new Error(failed?.message ?? 'the step failed'), failed?.code ?? undefined);
    }
    // The trace of a provisioning (or change) ends once the cluster converged: drift checks start their own.
    if (outcome.kind === 'converged' || outcome.kind === 'deleted') status.trace = null;
    // The status, the events that led to it and the state change for watchers, in one write:
    // the outbox publishes them to JetStream (whose sequence is each event's cursor) in this
    // order, however long NATS is away.
    const announcements = [
      ...this.eventAnnouncements(spec, scope.events, now),
      ...this.stateAnnouncements(spec, before, status, now),
    ];
    await repo.saveStatus({ ...status, version: current.version }, this.owner, announcements, current);
    this.stats.steps++;
    if (outcome.kind === 'failed') this.stats.failures++;
    timed(outcome.kind);
  }

  private eventAnnouncements(spec: ClusterSpec, notes: readonly EventNote[], now: Date): Announcement[] {
    const time = now.toISOString();
    return notes.map((note) => ({
      type: 'event',
      event: { tenantId: spec.tenantId, clusterId: spec.id, time, ...note },
    }));
  }

  /** The new conditions and phase for watchers, and the cluster's fleet entry, if they changed. */
  private stateAnnouncements(
    spec: ClusterSpec,
    before: Pick<ClusterStatus, 'phase' | 'conditions' | 'observedGeneration'>,
    status: ClusterStatus,
    now: Date,
  ): Announcement[] {
    const announcements: Announcement[] = [];
    const changed = before.phase !== status.phase || !sameConditions(before.conditions, status.conditions);
    if (changed) {
      announcements.push({
        type: 'conditions',
        update: { tenantId: spec.tenantId, clusterId: spec.id, phase: status.phase, conditions: status.conditions },
      });
    }
    if (changed || before.observedGeneration !== status.observedGeneration)
      announcements.push({ type: 'fleet', cluster: fleetEntry(spec, status, now) });
    if (before.phase !== status.phase) {
      announcements.push({
        type: 'lifecycle',
        cluster: {
          id: spec.id,
          tenantId: spec.tenantId,
          projectId: spec.projectId,
          name: spec.name,
          phase: status.phase,
          cloud: { type: spec.cloud.type, region: spec.cloud.region },
          nodePools: spec.nodePools.map((p) => ({ name: p.name, role: p.role, count: p.count })),
        },
      });
    }
    return announcements;
  }
}

function stripVersion(status: VersionedStatus): ClusterStatus {
  const { version: _v, ...rest } = status;
  return rest;
}
