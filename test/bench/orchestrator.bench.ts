import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session, type Profiler } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { CloudProvider, ClusterNetwork, Machine } from '@fleetgraph/clouds';
import {
  ClusterRepository,
  natsClusterRequests,
  Orchestrator,
  ProviderRegistry,
  type ClusterSpec,
} from '@fleetgraph/clusters';
import {
  createBus,
  createLogger,
  createOutbox,
  createSqliteStore,
  type Bus,
  type Collection,
  type Outbox,
  type Store,
  type StoredDoc,
} from '@fleetgraph/kit';
import { rawNats, startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { localCloudAdmin } from '@fleetgraph/local-cloud';
import {
  CLUSTER_EVENTS_STREAM,
  CLUSTER_STATE_STREAM,
  clusterConditions,
  clusterEvent,
  clusterLifecycle,
  fleetCluster,
} from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcess, type ServiceProcess } from '../src/processes.js';

/**
 * Benchmark of the orchestrator: 1,000 clusters created at once on the local cloud at maximum
 * speed, until every one is RUNNING. Each cluster has one control-plane node (t3.medium) and
 * two workers (m5.large) over two zones, and goes through every milestone: image, network
 * (9 EC2 calls of its own and two VPC lookups shared with other clusters'), control plane,
 * workers, add-ons; three steps each. Then, twice, every cluster woken at once for a drift check
 * (`drift-1`, `drift-2`: the step a converged cluster takes every 30 s: claim, a describe of its
 * machines, which the AWS adapter makes together with other clusters', save), for the cost of
 * the common step.
 *
 * The orchestrator runs in this process, from source, wired as `services/clusters` wires it
 * (SQLite store, JetStream events, the local provider, which is the AWS SDK), with its
 * production defaults (poll 250 ms, requeue 1 s while in progress, 16 clusters at once).
 * Everything else runs in a child process (`orchestrator.world.mjs`, on the services' builds:
 * `pnpm build` first): the local cloud (speed 100,000: a 60 s boot takes 0.6 ms; vCPU limit
 * 1,000,000), a simulated agent per cluster (pack installs) and stand-ins for the profiles and
 * images services. nats-server is a third process. CPU is measured per process:
 *
 * - orchestrator: this process's CPU (user + system, `process.cpuUsage()`) over the phase,
 *   divided by the steps taken: what one reconcile step costs with everything it brings (store,
 *   NATS client, AWS SDK and HTTP, GC), and nothing of the cloud's. Its main thread alone
 *   (/proc) and its event-loop utilisation are printed too, and `Orchestrator.stats.cpuMicros`
 *   (process CPU while a step is in flight) as a cross-check;
 * - the world process and nats-server, from /proc/<pid>/stat (Linux).
 *
 * Each phase also prints the store's write transactions per step (counted by a wrapper around
 * the store: a commit, or a single write of a collection) and, on the local cloud, the EC2 calls
 * per cluster by action (the local cloud's `fleetgraph_local_cloud_ec2_requests_total`; for a
 * local cloud without it, the POSTs to its `/`).
 *
 * Ten clusters are provisioned first, unmeasured, to warm the JIT and the SDK. Prints the
 * figures; asserts nothing about time, only that every cluster is RUNNING with its three
 * machines and no more. Stops by itself: each phase has a deadline. Run:
 *   npx vitest run --project bench test/bench/orchestrator.bench.ts
 * ORCHESTRATOR_BENCH_CLOUD=memory runs the same with an in-memory cloud in this process instead
 * of the local cloud (no AWS SDK, no HTTP; pack installs answered by the world for every
 * cluster): what the orchestrator itself costs, store and NATS included.
 * ORCHESTRATOR_BENCH_CLUSTERS (1000) and ORCHESTRATOR_BENCH_CONCURRENCY (16) change the load;
 * ORCHESTRATOR_BENCH_BATCH_WINDOW_MS sets how long the AWS adapter lets describes of many clusters
 * wait for each other (0: each alone, as before batching; unset: its default);
 * ORCHESTRATOR_BENCH_PROFILE=<prefix> writes V8 CPU profiles of this process over each phase
 * (`<prefix>-provisioning.cpuprofile`, `<prefix>-drift-1.cpuprofile`, ..., for Chrome DevTools
 * or speedscope) and prints where its main thread spent the time.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const CLUSTERS = Number(process.env.ORCHESTRATOR_BENCH_CLUSTERS ?? 1000);
const CONCURRENCY = process.env.ORCHESTRATOR_BENCH_CONCURRENCY
  ? Number(process.env.ORCHESTRATOR_BENCH_CONCURRENCY)
  : undefined;
const PROFILE = process.env.ORCHESTRATOR_BENCH_PROFILE;
const CLOUD = process.env.ORCHESTRATOR_BENCH_CLOUD === 'memory' ? 'memory' : 'local';
/** How long describes of many clusters wait to be made as one EC2 call (ms; 0: each alone); unset, the adapter's default. */
const BATCH_WINDOW_MS = process.env.ORCHESTRATOR_BENCH_BATCH_WINDOW_MS;
const PROVISIONING_DEADLINE_MS = 200_000;
const RESYNC_DEADLINE_MS = 30_000;
const SPEED = 100_000;
const WARMUP = 10;
/** vCPUs of one cluster: t3.medium (2) + 2 x m5.large (2). */
const VCPUS_PER_CLUSTER = 6;
const log = createLogger('orchestrator-bench', 'silent');

/** CPU seconds (user + system) of a process, or of one of its threads, from /proc (Linux; ticks of 10 ms). */
function cpuSeconds(pid: number, thread?: number): number {
  const fields = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8')
    .split(') ')[1]!
    .split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The pid of this process's nats-server child, found by its command name. */
function natsServerPid(): number | undefined {
  for (const task of readdirSync(`/proc/${process.pid}/task`)) {
    for (const child of readFileSync(`/proc/${process.pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean)) {
      if (readFileSync(`/proc/${child}/comm`, 'utf8').trim() === 'nats-server') return Number(child);
    }
  }
  return undefined;
}

/**
 * The store, counting its writes: each `commit` is one transaction, as is each single write of a
 * collection (insert, replace, delete, and the deletes by filter, which are transactions of
 * their own even when they find nothing).
 */
function countingStore(inner: Store): { store: Store; counts: { commits: number; single: number } } {
  const counts = { commits: 0, single: 0 };
  const single = new Set(['insert', 'replace', 'delete', 'deleteMany', 'keepFirst', 'deleteBefore']);
  const store: Store = {
    collection: async <T extends StoredDoc>(spec: Parameters<Store['collection']>[0]) => {
      const collection = (await inner.collection<T>(spec as never)) as Collection<T>;
      return new Proxy(collection, {
        get(target, name, receiver) {
          const value = Reflect.get(target, name, receiver);
          if (typeof value !== 'function') return value;
          if (!single.has(String(name))) return value.bind(target);
          return (...args: unknown[]) => {
            counts.single++;
            return value.apply(target, args);
          };
        },
      });
    },
    commit: (writes) => {
      if (writes.length > 0) counts.commits++;
      return inner.commit(writes);
    },
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
  return { store, counts };
}

/** EC2 requests the local cloud answered, by action, from its /metrics (empty for a cloud without that metric). */
async function ec2Requests(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const byAction = new Map<string, number>();
  for (const match of text.matchAll(
    /^fleetgraph_local_cloud_ec2_requests_total\{action="([^"]+)",code="[^"]+"\} (\d+)/gm,
  ))
    byAction.set(match[1]!, (byAction.get(match[1]!) ?? 0) + Number(match[2]));
  if (byAction.size === 0) {
    // An older local cloud: EC2 requests are the POSTs to /.
    for (const match of text.matchAll(
      /^fleetgraph_http_request_duration_seconds_count\{method="POST",route="\/",status_code="\d+"\} (\d+)/gm,
    ))
      byAction.set('(all)', (byAction.get('(all)') ?? 0) + Number(match[1]));
  }
  return byAction;
}

const spec = (i: number, prefix: string): ClusterSpec => ({
  id: `${prefix}-${String(i).padStart(4, '0')}`,
  tenantId: `tenant-${i % 10}`,
  projectId: `project-${i % 50}`,
  name: `${prefix}-${i}`,
  profileId: 'prof-base',
  cloud: { type: 'LOCAL', region: 'local-1', credentialRef: null },
  nodePools: [
    {
      name: 'control-plane',
      role: 'CONTROL_PLANE',
      count: 1,
      instanceType: 't3.medium',
      availabilityZones: ['local-1a'],
    },
    {
      name: 'workers',
      role: 'WORKER',
      count: 2,
      instanceType: 'm5.large',
      availabilityZones: ['local-1a', 'local-1b'],
    },
  ],
  generation: 1,
  deletionRequested: false,
  createdAt: new Date().toISOString(),
});

/**
 * A cloud in this process's memory, for ORCHESTRATOR_BENCH_CLOUD=memory: networks and machines
 * are records, and a machine runs as soon as it is made. Only what the orchestrator calls.
 */
class MemoryClouds extends ProviderRegistry {
  /** Machines by cluster. */
  readonly machines = new Map<string, Machine[]>();
  private readonly byToken = new Map<string, Machine>();
  private readonly provider = {
    type: 'LOCAL',
    ensureNetwork: async ({ clusterId, region, zones }): Promise<ClusterNetwork> => ({
      clusterId,
      region,
      networkId: `vpc-${clusterId}`,
      cidr: '10.0.0.0/16',
      controlPlane: {
        role: 'CONTROL_PLANE',
        securityGroupId: `sg-${clusterId}-cp`,
        subnets: zones.map((zone, i) => ({ id: `subnet-${clusterId}-cp${i}`, zone, cidr: `10.0.${i}.0/24` })),
      },
      workers: {
        role: 'WORKER',
        securityGroupId: `sg-${clusterId}-w`,
        subnets: zones.map((zone, i) => ({ id: `subnet-${clusterId}-w${i}`, zone, cidr: `10.0.${16 * (i + 1)}.0/20` })),
      },
    }),
    createMachine: async (input) => {
      let machine = this.byToken.get(input.clientToken);
      if (!machine) {
        const { clusterId, pool, role, region, zone, instanceType, imageId } = input;
        machine = {
          id: `i-${this.byToken.size + 1}`,
          name: input.machineName,
          clusterId,
          pool,
          role,
          region,
          zone,
          instanceType,
          imageId,
          state: 'running',
          launchedAt: new Date().toISOString(),
          tags: {},
        };
        this.byToken.set(input.clientToken, machine);
        this.machines.set(clusterId, [...(this.machines.get(clusterId) ?? []), machine]);
      }
      return { ...machine };
    },
    describeMachines: async ({ clusterId }) => (this.machines.get(clusterId) ?? []).map((m) => ({ ...m })),
  } satisfies Partial<CloudProvider>;

  constructor() {
    super({ localCloudUrl: 'http://127.0.0.1:1' });
  }

  override get(): CloudProvider {
    return this.provider as unknown as CloudProvider;
  }
}

/** What the main thread's samples were doing, charged to the nearest caller that is a package (so a socket write goes to whoever wrote). */
function breakdown(profile: Profiler.Profile): string[] {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parents = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parents.set(child, n.id);
  const component = (url: string): string | null => {
    if (!url || url.startsWith('node:')) return null;
    if (/@smithy|@aws-sdk|@aws-crypto|fast-xml-parser|services\/clouds\//.test(url))
      return 'AWS SDK and the clouds adapter (HTTP included)';
    if (/\/nats@/.test(url)) return 'NATS client';
    if (/services\/kit\/src\/store|better-sqlite3/.test(url)) return 'store (SQLite)';
    if (/services\/clusters\//.test(url)) return 'orchestrator (services/clusters)';
    if (/zod@/.test(url)) return 'zod (bus validation)';
    return 'other';
  };
  const totals = new Map<string, number>();
  for (const sample of profile.samples ?? []) {
    const leaf = nodes.get(sample)!.callFrame.functionName;
    let name: string | null = leaf === '(idle)' ? 'idle' : leaf === '(garbage collector)' ? 'garbage collector' : null;
    for (let id: number | undefined = sample; !name && id !== undefined; id = parents.get(id))
      name = component(nodes.get(id)!.callFrame.url);
    name ??= 'Node internals (sockets, timers, no caller)';
    totals.set(name, (totals.get(name) ?? 0) + 1);
  }
  const busy = (profile.samples?.length ?? 0) - (totals.get('idle') ?? 0);
  totals.delete('idle');
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `    ${((100 * n) / busy).toFixed(0).padStart(3)}%  ${name}`);
}

describe('orchestrator benchmark', () => {
  let nats: NatsServer;
  let world: ServiceProcess;
  let bus: Bus;
  let store: Store;
  let storeCounts: { commits: number; single: number };
  let repo: ClusterRepository;
  let providers: ProviderRegistry;
  let orchestrator: Orchestrator;
  let outbox: Outbox;
  let dataDir: string;
  /** Clusters whose lifecycle event said RUNNING. */
  const running = new Set<string>();

  const newOrchestrator = () =>
    new Orchestrator({
      repo,
      providers,
      requests: natsClusterRequests(bus),
      log,
      ...(CONCURRENCY ? { concurrency: CONCURRENCY } : {}),
    });

  beforeAll(async () => {
    nats = await startNatsServer();
    dataDir = await mkdtemp(join(tmpdir(), 'orchestrator-bench-'));
    world = await startProcess('orchestrator-bench-world', join(root, 'test/bench/orchestrator.world.mjs'), {
      DATA_DIR: join(dataDir, 'local-cloud'),
      NATS_URL: nats.url,
      NATS_CREDENTIALS: await nats.credentials('orchestrator-bench-world'),
      LOCAL_CLOUD_SPEED: String(SPEED),
      LOCAL_CLOUD_VCPU_LIMIT: String(1_000_000),
      AGENTS: CLOUD === 'memory' ? 'any' : 'machines',
    });
    bus = await createBus({ url: nats.url, name: 'clusters', log, credentials: await nats.credentials('clusters') });
    await bus.ensureStreams([CLUSTER_EVENTS_STREAM, CLUSTER_STATE_STREAM]);
    // Raw, as the bench has always read them: validating here would add to the orchestrator's measured cost.
    rawNats(bus).connection.subscribe(clusterLifecycle.filter(), {
      callback: (_err, msg) => {
        const summary = msg.json<{ id: string; phase: string }>();
        if (summary.phase === 'RUNNING') running.add(summary.id);
      },
    });
    ({ store, counts: storeCounts } = countingStore(createSqliteStore({ file: join(dataDir, 'clusters.sqlite') })));
    outbox = await createOutbox({
      store,
      bus,
      log,
      events: [clusterEvent, clusterConditions, clusterLifecycle, fleetCluster],
    });
    repo = await ClusterRepository.open(store, outbox);
    outbox.start();
    providers =
      CLOUD === 'memory'
        ? new MemoryClouds()
        : new ProviderRegistry({
            localCloudUrl: world.url,
            ...(BATCH_WINDOW_MS ? { batchWindowMs: Number(BATCH_WINDOW_MS) } : {}),
          });
    orchestrator = newOrchestrator();
    orchestrator.start();
  });

  afterAll(async () => {
    await orchestrator?.stop();
    await outbox?.stop();
    await bus?.close();
    await providers?.close();
    await store?.close();
    await world?.stop();
    await nats?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** Polls `done` every 50 ms until it holds or the deadline passes, printing `progress` every 10 s. */
  async function until(
    done: () => boolean,
    deadlineMs: number,
    progress?: (seconds: number) => string,
  ): Promise<boolean> {
    const started = Date.now();
    let printed = started;
    while (!done()) {
      if (Date.now() - started > deadlineMs) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (progress && Date.now() - printed >= 10_000) {
        printed = Date.now();
        console.log(`  ${progress((printed - started) / 1000)}`);
      }
    }
    return true;
  }

  /** Measures the orchestrator, the world and nats-server while `run` runs. */
  async function measure(
    phase: string,
    clusters: number,
    run: () => Promise<boolean>,
  ): Promise<{ steps: number; seconds: number; lines: string[] }> {
    const natsPid = natsServerPid();
    const ec2Before = CLOUD === 'local' ? await ec2Requests(world.url) : new Map<string, number>();
    const store0 = { ...storeCounts };
    const profiler = PROFILE ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    const stats0 = { ...orchestrator.stats };
    const at = performance.now();
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const thread0 = cpuSeconds(process.pid, process.pid);
    const world0 = cpuSeconds(world.child.pid!);
    const nats0 = natsPid ? cpuSeconds(natsPid) : NaN;

    const finished = await run();

    const seconds = (performance.now() - at) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    const thread = cpuSeconds(process.pid, process.pid) - thread0;
    const worldCpu = cpuSeconds(world.child.pid!) - world0;
    const natsCpu = natsPid ? cpuSeconds(natsPid) - nats0 : NaN;
    // A new orchestrator starts its counters at zero.
    const fresh = orchestrator.stats.steps < stats0.steps;
    const steps = orchestrator.stats.steps - (fresh ? 0 : stats0.steps);
    const failures = orchestrator.stats.failures - (fresh ? 0 : stats0.failures);
    const statsCpu = (orchestrator.stats.cpuMicros - (fresh ? 0 : stats0.cpuMicros)) / 1e6;
    const own = (cpu.user + cpu.system) / 1e6;
    const ms = (s: number) => `${((s * 1000) / steps).toFixed(2)} ms/step`;
    const commits = storeCounts.commits - store0.commits;
    const singles = storeCounts.single - store0.single;
    const ec2After = CLOUD === 'local' ? await ec2Requests(world.url) : new Map<string, number>();
    const ec2 = [...ec2After]
      .map(([action, n]) => [action, n - (ec2Before.get(action) ?? 0)] as const)
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1]);
    const ec2Total = ec2.reduce((sum, [, n]) => sum + n, 0);
    const lines = [
      `  ${phase}: ${steps} steps in ${seconds.toFixed(1)} s${finished ? '' : ' (DEADLINE PASSED)'}, ${failures} failed`,
      `    steps per second (wall): ${(steps / seconds).toFixed(0)}`,
      `    orchestrator CPU:        ${own.toFixed(1)} s = ${ms(own)} = ${(steps / own).toFixed(0)} steps per CPU-second (user ${(cpu.user / 1e6).toFixed(1)} s, system ${(cpu.system / 1e6).toFixed(1)} s; main thread ${thread.toFixed(1)} s; event loop ${(elu.utilization * 100).toFixed(0)}% busy)`,
      `    world CPU:               ${worldCpu.toFixed(1)} s = ${ms(worldCpu)} (local cloud, agents, profiles and images stand-ins)`,
      `    nats-server CPU:         ${natsCpu.toFixed(1)} s = ${ms(natsCpu)}`,
      `    stats.cpuMicros:         ${ms(statsCpu)} (the orchestrator's own count)`,
      `    store writes:            ${((commits + singles) / steps).toFixed(2)} per step (${(commits / steps).toFixed(2)} commits of several writes, ${(singles / steps).toFixed(2)} single writes)`,
      ...(CLOUD === 'local'
        ? [
            `    EC2 calls:               ${(ec2Total / clusters).toFixed(2)} per cluster, ${(ec2Total / steps).toFixed(2)} per step (${ec2.map(([a, n]) => `${a} ${(n / clusters).toFixed(2)}`).join(', ')})`,
          ]
        : []),
    ];
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      const file = `${PROFILE}-${phase}.cpuprofile`;
      await writeFile(file, JSON.stringify(profile));
      lines.push(`    main thread, by component (${file}):`, ...breakdown(profile));
    }
    return { steps, seconds, lines };
  }

  it(`should bring ${CLUSTERS} clusters created at once to RUNNING`, async () => {
    const warm = Array.from({ length: WARMUP }, (_, i) => spec(i, 'warm'));
    for (const s of warm) await repo.create(s, new Date());
    orchestrator.poke();
    expect(await until(() => warm.every((s) => running.has(s.id)), 60_000)).toBe(true);

    const specs = Array.from({ length: CLUSTERS }, (_, i) => spec(i, 'bench'));
    const reached = () => specs.filter((s) => running.has(s.id)).length;
    const provisioning = await measure('provisioning', CLUSTERS, async () => {
      for (const s of specs) await repo.create(s, new Date());
      orchestrator.poke();
      return until(
        () => reached() === CLUSTERS,
        PROVISIONING_DEADLINE_MS,
        (t) => `${t.toFixed(0)} s: ${reached()} running, ${orchestrator.stats.steps} steps`,
      );
    });

    // Twice, every cluster due at once for a drift check, taken by a fresh orchestrator. The
    // first check after provisioning still changes one condition's message (Installing
    // Add-ons: "2 pack(s) installed" becomes "every pack of the profile is installed"), so it
    // publishes the conditions once per cluster; the second changes nothing.
    const all = [...warm, ...specs];
    const drift: Awaited<ReturnType<typeof measure>>[] = [];
    for (const phase of ['drift-1', 'drift-2']) {
      await orchestrator.stop();
      for (const s of all) await repo.wake(s.id, new Date());
      orchestrator = newOrchestrator();
      drift.push(
        await measure(phase, all.length, async () => {
          orchestrator.start();
          return until(() => orchestrator.stats.steps >= all.length, RESYNC_DEADLINE_MS);
        }),
      );
    }

    console.log(
      [
        `orchestrator benchmark: ${CLUSTERS} clusters (1 control plane + 2 workers) created at once; ${CLOUD === 'memory' ? 'in-memory cloud' : `local cloud at speed ${SPEED}, batch window ${BATCH_WINDOW_MS ?? 'default'} ms`}; concurrency ${CONCURRENCY ?? 16}`,
        `  RUNNING: ${reached()} of ${CLUSTERS} in ${provisioning.seconds.toFixed(1)} s (${(provisioning.steps / reached() || 0).toFixed(1)} steps per cluster)`,
        ...provisioning.lines,
        ...drift.flatMap((d) => d.lines),
      ].join('\n'),
    );
    expect(reached()).toBe(CLUSTERS);
    const statuses = await Promise.all(all.map((s) => repo.getStatus(s.id)));
    expect(statuses.filter((s) => s?.phase === 'RUNNING')).toHaveLength(all.length);
    // Every machine accounted for: nothing doubled, nothing missing.
    if (providers instanceof MemoryClouds) expect([...providers.machines.values()].flat()).toHaveLength(all.length * 3);
    else expect((await localCloudAdmin(world.url).quota('local-1')).vcpuUsed).toBe(all.length * VCPUS_PER_CLUSTER);
  });
});
