import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, it } from 'vitest';
import type { Report, Request, StepResult, Widget } from './subscriptions.child.js';

/**
 * Benchmark of the gateway's subscriptions (issue 6): one gateway process (the widgets fixture
 * platform of gateway/src/subscriptions), 10,000 graphql-transport-ws subscribers over 1,000
 * subjects (widgets, 10 subscribers each, all with the same selection), and events published to
 * JetStream at increasing rates. Against it, the ceiling: a bare `ws` server (no GraphQL, no
 * JetStream consumers: core NATS subscriptions) that sends each event's frame, built once, to
 * the 10,000 subscribers of 1,000 other subjects.
 *
 * Every party is a process of its own (subscriptions.child.ts): the gateway, the bare server,
 * and for each of them a process holding its 10,000 subscribers (raw `ws` clients speaking
 * graphql-transport-ws) and the publisher of their events, which puts the publish time in each
 * event, so latency is publish to receipt on one clock. The two servers take turns at each rate,
 * so that both see the same machine (this one is shared: absolute figures move from run to run,
 * the comparison much less).
 *
 * Prints, per server: how long its 10,000 subscribers took to connect and subscribe (a reconnect
 * storm, 200 handshakes at a time, until the server counts every subscription) and the server's
 * CPU meanwhile (the wall-clock ratio moves with the machine's load, since the gateway is bound by
 * its CPU there and the bare server by the clients; the CPU much less); memory per idle subscriber (RSS and V8 heap after a full GC, once the
 * process has settled, see `settled`: the growth from before its 10,000 subscribers connect and
 * subscribe, divided by 10,000, and the growth over the second 5,000 alone, divided by 5,000; the
 * same less V8's young generation (new space, which the connection burst grows); RSS right after
 * connecting too; the V8 heap spaces) and idle CPU; per rate:
 * delivered events/s (`next` frames received), p50/p99 latency, the server's CPU (share of one
 * core) and CPU per delivered event, nats-server's and the subscribers' CPU, and for the gateway
 * the longest its event loop was held up (its /metrics). A server leaves the
 * ladder at the first rate it cannot carry (under 90% delivered, p99 over 1 s, or a socket lost).
 * Asserts nothing about time.
 *
 *   npx vitest run --project bench test/bench/subscriptions.bench.ts
 *
 * SUBSCRIPTIONS_BENCH_SUBSCRIBERS, _SUBJECTS, _RATES (events published per second, comma
 * separated), _STEP_S and _PATTERN_AT (the gateway's SUBSCRIPTION_PATTERN_CONSUMER_AT) change the shape; SUBSCRIPTIONS_BENCH_PROFILE=<dir> writes CPU profiles of
 * the servers (node --cpu-prof) under <dir>/<server>/ (the largest file is the main thread's).
 */
const env = process.env;
const SUBSCRIBERS = Number(env.SUBSCRIPTIONS_BENCH_SUBSCRIBERS ?? 10_000);
const SUBJECTS = Number(env.SUBSCRIPTIONS_BENCH_SUBJECTS ?? 1_000);
const RATES = (env.SUBSCRIPTIONS_BENCH_RATES ?? '1000,2000,3000,3500,4000,4500,5000,6000,7500').split(',').map(Number);
const WARM_MS = 1_000;
const STEP_MS = Number(env.SUBSCRIPTIONS_BENCH_STEP_S ?? 5) * 1000;
const PROFILE_DIR = env.SUBSCRIPTIONS_BENCH_PROFILE;
const root = fileURLToPath(new URL('../../', import.meta.url));

// ---- child processes ----

type ReportOf<T extends Report['type']> = Extract<Report, { type: T }>;

interface Child {
  name: string;
  pid: number;
  ready: ReportOf<'ready'>;
  /** Sends a request and waits for the report of type `type`. */
  ask<T extends Report['type']>(request: Request, type: T, timeoutMs?: number): Promise<ReportOf<T>>;
  /** Calls `listener` on each report of type `type` until the returned function is called. */
  on<T extends Report['type']>(type: T, listener: (report: ReportOf<T>) => void): () => void;
  stop(): Promise<void>;
}

/** Starts subscriptions.child.ts in a role (TypeScript sources, through swc-hooks.mjs). */
async function startChild(
  name: string,
  args: string[],
  profile = false,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<Child> {
  // One directory per process: the module hooks' thread writes a profile of its own beside the main thread's.
  const cpuProf = profile && PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}/${name}`] : [];
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      new URL('./swc-hooks.mjs', import.meta.url).href,
      '--expose-gc',
      ...cpuProf,
      fileURLToPath(new URL('./subscriptions.child.ts', import.meta.url)),
      ...args,
    ],
    {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...env, ...extraEnv, NODE_OPTIONS: '', TEST_LOG_LEVEL: env.TEST_LOG_LEVEL ?? 'silent' },
    },
  );
  const listeners = new Map<Report['type'], Set<(report: Report) => void>>();
  const on = <T extends Report['type']>(type: T, listener: (report: ReportOf<T>) => void) => {
    const set = listeners.get(type) ?? new Set();
    listeners.set(type, set);
    const wrapped = listener as (report: Report) => void;
    set.add(wrapped);
    return () => void set.delete(wrapped);
  };
  child.on('message', (report: Report) => {
    for (const listener of [...(listeners.get(report.type) ?? [])]) listener(report);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const next = <T extends Report['type']>(type: T, timeoutMs: number) =>
    new Promise<ReportOf<T>>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${name}: no ${type} in ${timeoutMs} ms`));
      }, timeoutMs);
      const off = on(type, (report) => {
        clearTimeout(timer);
        off();
        resolve(report);
      });
      void exited.then(() => {
        clearTimeout(timer);
        off();
        reject(new Error(`${name} exited while waiting for ${type}`));
      });
    });
  const ready = await next('ready', 120_000);
  return {
    name,
    pid: child.pid!,
    ready,
    ask(request, type, timeoutMs = 300_000) {
      const report = next(type, timeoutMs);
      child.send(request);
      return report;
    },
    on,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      if (child.connected) child.send({ type: 'stop' } satisfies Request);
      else child.kill('SIGTERM');
      await exited;
      clearTimeout(killer);
    },
  };
}

/** CPU seconds (user + system) a process has used, from /proc (Linux; clock ticks of 10 ms). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The pid of a child of `parent` by its command name (the fixture's nats-server). */
function childPid(parent: number, command: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm === command && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent)
        return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (cores: number) => `${Math.round(cores * 100)}%`;

// ---- one server under test ----

interface Step extends StepResult {
  rate: number;
  offered: number;
  serverCpu: number;
  natsCpu: number;
  /** Server CPU microseconds per delivered event. */
  costUs: number;
  /** The longest the server's event loop was held up during the window, where it says (the gateway's /metrics). */
  loopDelayMs?: number;
}

interface Contender {
  name: string;
  server: Child;
  clients: Child;
  widgets: Widget[];
  idle?: {
    rss: number;
    heap: number;
    marginalRss: number;
    marginalHeap: number;
    /** RSS less V8's young generation (see connectAll), from zero and over the second half. */
    oldRss: number;
    marginalOldRss: number;
    burstRss: number;
    cpu: number;
    connectS: number;
    /** The server's CPU (seconds) while its subscribers connected and subscribed. */
    connectCpuS: number;
  };
  steps: Step[];
  done: boolean;
}

/**
 * Memory once the process has settled: V8 gives back what a burst left (its memory reducer
 * compacts an idle heap over some seconds), so a probe right after connecting 10,000 sockets
 * sees the burst, not what idle subscribers hold. Probes (after a full GC) every 5 s until RSS
 * stops falling, for at most 30 s.
 */
async function settled(server: Child): Promise<ReportOf<'probe'>> {
  let last = await server.ask({ type: 'probe', gc: true }, 'probe');
  for (let waited = 0; waited < 30_000; waited += 5_000) {
    await sleep(5_000);
    const next = await server.ask({ type: 'probe', gc: true }, 'probe');
    const falling = next.memory.rss < last.memory.rss * 0.99;
    last = next;
    if (!falling) break;
  }
  return last;
}

/** Connects the contender's subscribers and measures its memory per idle subscriber. */
async function connectAll(contender: Contender, nats: { natsUrl: string; natsCredentials: string }) {
  const { server, clients, name } = contender;
  const subscriptions = async () => (await server.ask({ type: 'probe', gc: false }, 'probe')).counters.subscriptions;
  // A first use of every path (query plans, JIT), so that the baseline is not the first.
  await clients.ask(
    { type: 'connect', wsUrl: server.ready.wsUrl!, ...nats, widgets: contender.widgets.slice(0, 50), count: 100 },
    'connected',
  );
  while ((await subscriptions()) < 100) await sleep(100);
  await clients.ask({ type: 'disconnect' }, 'disconnected');
  while ((await subscriptions()) > 0) await sleep(100);

  const before = await settled(server);
  let connectMs = 0;
  let connectCpuS = 0;
  // In two halves, each over half of the subjects: the second half's growth is what one more
  // subscriber costs once the process is warm (JIT code, grown heap spaces and buffers are paid
  // by then); the whole growth from zero includes those fixed costs.
  const connectHalf = async (widgets: Widget[], count: number, total: number) => {
    const started = performance.now();
    const cpuBefore = cpuSeconds(server.pid);
    await clients.ask({ type: 'connect', wsUrl: server.ready.wsUrl!, ...nats, widgets, count }, 'connected');
    const deadline = Date.now() + 240_000;
    for (;;) {
      const { counters } = await server.ask({ type: 'probe', gc: false }, 'probe');
      if (counters.subscriptions >= total) break;
      if (Date.now() > deadline)
        throw new Error(`${name}: ${counters.subscriptions} of ${total} subscriptions after 240 s`);
      await sleep(250);
    }
    connectMs += performance.now() - started;
    connectCpuS += cpuSeconds(server.pid) - cpuBefore;
  };
  const half = Math.floor(SUBSCRIBERS / 2);
  const halfWidgets = Math.floor(contender.widgets.length / 2);
  await connectHalf(contender.widgets.slice(0, halfWidgets), half, half);
  const mid = await settled(server);
  await connectHalf(contender.widgets.slice(halfWidgets), SUBSCRIBERS - half, SUBSCRIBERS);
  const burst = await server.ask({ type: 'probe', gc: true }, 'probe');
  const { authorisations, authorisationsRemembered } = burst.counters;
  if (authorisations !== undefined)
    console.log(
      `${name}: ${fmt(authorisations)} authorisation queries run for ${fmt(SUBSCRIBERS)} subscribes (and the 100 of the first use), ${fmt(authorisationsRemembered ?? 0)} subscribes authorised from memory`,
    );
  const after = await settled(server);
  // V8's young generation grows with the allocation rate (here, the connection burst) and is given
  // back only after a while: a cost of a busy process, the same at 100 subscribers under load.
  const withoutYoung = (probe: ReportOf<'probe'>) => probe.memory.rss - (probe.spaces.new_space?.size ?? 0);
  contender.idle = {
    oldRss: (withoutYoung(after) - withoutYoung(before)) / SUBSCRIBERS,
    marginalOldRss: (withoutYoung(after) - withoutYoung(mid)) / (SUBSCRIBERS - half),
    rss: (after.memory.rss - before.memory.rss) / SUBSCRIBERS,
    heap: (after.memory.heapUsed - before.memory.heapUsed) / SUBSCRIBERS,
    marginalRss: (after.memory.rss - mid.memory.rss) / (SUBSCRIBERS - half),
    marginalHeap: (after.memory.heapUsed - mid.memory.heapUsed) / (SUBSCRIBERS - half),
    burstRss: (burst.memory.rss - mid.memory.rss) / (SUBSCRIBERS - half),
    cpu: NaN,
    connectS: connectMs / 1000,
    connectCpuS,
  };
  const { idle } = contender;
  console.log(
    `${name}: ${fmt(SUBSCRIBERS)} subscribers connected and subscribed in ${idle.connectS.toFixed(1)} s (two halves), ` +
      `${idle.connectCpuS.toFixed(1)} s of its CPU (${((idle.connectCpuS / SUBSCRIBERS) * 1e6).toFixed(0)} µs per subscriber); per idle subscriber: ` +
      `from zero ${kb(idle.rss)} RSS, ${kb(idle.heap)} V8 heap; the second ${fmt(SUBSCRIBERS - half)} ${kb(idle.marginalRss)} RSS, ${kb(idle.marginalHeap)} V8 heap ` +
      `(settled: RSS ${mib(before.memory.rss)} -> ${mib(mid.memory.rss)} -> ${mib(after.memory.rss)}, ` +
      `heap ${mib(before.memory.heapUsed)} -> ${mib(mid.memory.heapUsed)} -> ${mib(after.memory.heapUsed)} of ${mib(after.memory.heapTotal)}); ` +
      `right after connecting the second half: ${kb(idle.burstRss)} RSS per subscriber; ` +
      `RSS less V8's young generation: ${kb(idle.oldRss)} from zero, ${kb(idle.marginalOldRss)} over the second half`,
  );
  // Where the V8 heap's committed size goes (committed/used per space), at each settled probe.
  const spaces = (probe: ReportOf<'probe'>) =>
    Object.entries(probe.spaces)
      .filter(([, space]) => space.size > 1024 * 1024)
      .map(([space, { size, used }]) => `${space.replace(/_space$/, '')} ${mib(size)}/${mib(used)}`)
      .join(', ');
  console.log(
    `${name} heap spaces, committed/used: before ${spaces(before)}; half ${spaces(mid)}; all ${spaces(after)}`,
  );
}

/**
 * The longest event loop delay since the previous call, from prom-client's default metrics (which
 * restart their delay histogram at each scrape).
 */
async function loopDelayMs(metricsUrl: string | undefined): Promise<number | undefined> {
  if (!metricsUrl) return undefined;
  const text = await (await fetch(metricsUrl)).text();
  const max = /^nodejs_eventloop_lag_max_seconds ([\d.e+-]+)$/m.exec(text)?.[1];
  return max === undefined ? undefined : Number(max) * 1000;
}

/** One rate against one contender. */
async function step(contender: Contender, rate: number, natsPid: number | undefined): Promise<Step> {
  const { server, clients } = contender;
  const metricsUrl = server.ready.metricsUrl;
  let start = { server: NaN, nats: NaN, at: 0 };
  let end = { server: NaN, nats: NaN, at: 0 };
  const scrapes: Promise<number | undefined>[] = [];
  const off = clients.on('window', ({ edge }) => {
    const sample = { server: cpuSeconds(server.pid), nats: cpuSeconds(natsPid), at: performance.now() };
    scrapes.push(loopDelayMs(metricsUrl));
    if (edge === 'start') start = sample;
    else end = sample;
  });
  const { result, lost } = await clients.ask({ type: 'step', rate, warmMs: WARM_MS, measureMs: STEP_MS }, 'step');
  off();
  const [, windowDelay] = await Promise.all(scrapes);
  const seconds = (end.at - start.at) / 1000;
  const serverCpu = (end.server - start.server) / seconds;
  const s: Step = {
    ...result,
    rate,
    offered: (rate * SUBSCRIBERS) / contender.widgets.length,
    serverCpu,
    natsCpu: (end.nats - start.nats) / seconds,
    costUs: (serverCpu * 1e6) / result.delivered,
    loopDelayMs: windowDelay,
  };
  contender.steps.push(s);
  const lostAny = Object.keys(lost).length > 0;
  console.log(
    `${contender.name.padEnd(7)} ${fmt(rate).padStart(6)} events/s (${fmt(s.offered).padStart(7)} offered): ${fmt(s.delivered).padStart(7)} delivered/s, ` +
      `p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms; CPU: server ${pct(serverCpu)} (${s.costUs.toFixed(1)} µs per event), ` +
      `nats-server ${pct(s.natsCpu)}, subscribers+publisher ${pct(s.cpu)}` +
      `${s.loopDelayMs === undefined ? '' : `; longest event loop delay ${s.loopDelayMs.toFixed(0)} ms`}${lostAny ? `; sockets lost: ${JSON.stringify(lost)}` : ''}`,
  );
  if (lostAny || s.delivered < 0.9 * s.offered || s.p99 > 1_000) contender.done = true;
  return s;
}

const children: Child[] = [];
afterAll(async () => {
  await Promise.allSettled(children.reverse().map((child) => child.stop()));
});

it('should measure 10,000 subscribers through the gateway against a bare ws broadcast', async () => {
  const start = (name: string, args: string[], profile = false, extraEnv: NodeJS.ProcessEnv = {}) =>
    startChild(name, args, profile, extraEnv).then((child) => {
      children.push(child);
      return child;
    });
  const gatewayServer = await start('gateway', ['gateway', String(2 * SUBJECTS)], true);
  const natsUrl = gatewayServer.ready.natsUrl!;
  // The gateway's nats-server authenticates: every other connection presents its credentials.
  const natsCredentials = gatewayServer.ready.natsCredentials!;
  const natsPid = childPid(gatewayServer.pid, 'nats-server');
  const widgets = gatewayServer.ready.widgets!;
  const [bareServer, gatewayClients, bareClients] = await Promise.all([
    start('bare-ws', ['bare', natsUrl], true, { NATS_CREDENTIALS: natsCredentials }),
    start('gateway-clients', ['clients']),
    start('bare-clients', ['clients']),
  ]);
  // Each contender its own subjects, so that one's events never reach the other.
  const gateway: Contender = {
    name: 'gateway',
    server: gatewayServer,
    clients: gatewayClients,
    widgets: widgets.slice(0, SUBJECTS),
    steps: [],
    done: false,
  };
  const bare: Contender = {
    name: 'bare-ws',
    server: bareServer,
    clients: bareClients,
    widgets: widgets.slice(SUBJECTS),
    steps: [],
    done: false,
  };
  await bareServer.ask({ type: 'serve', widgets: bare.widgets }, 'served');
  console.log(
    `subscriptions bench: ${fmt(SUBSCRIBERS)} subscribers over ${fmt(SUBJECTS)} subjects per server; rates ${RATES.join(', ')} events/s; ${STEP_MS / 1000} s per step`,
  );

  for (const contender of [gateway, bare]) await connectAll(contender, { natsUrl, natsCredentials });
  const idleStart = [cpuSeconds(gatewayServer.pid), cpuSeconds(bareServer.pid)];
  await sleep(5_000);
  gateway.idle!.cpu = (cpuSeconds(gatewayServer.pid) - idleStart[0]!) / 5;
  bare.idle!.cpu = (cpuSeconds(bareServer.pid) - idleStart[1]!) / 5;
  console.log(
    `idle CPU with ${fmt(SUBSCRIBERS)} subscribers each: gateway ${pct(gateway.idle!.cpu)}, bare-ws ${pct(bare.idle!.cpu)}`,
  );

  for (const rate of RATES) {
    for (const contender of [gateway, bare]) if (!contender.done) await step(contender, rate, natsPid);
    if (gateway.done && bare.done) break;
  }
  const counters = (await gatewayServer.ask({ type: 'probe', gc: false }, 'probe')).counters;

  const best = (c: Contender) => c.steps.reduce((a, s) => Math.max(a, s.delivered), 0);
  const carried = (c: Contender) => c.steps.filter((s) => s.p99 < 100 && s.delivered >= 0.9 * s.offered).at(-1);
  const line = (c: Contender) => {
    const ok = carried(c);
    const costs = c.steps.map((s) => s.costUs).filter(Number.isFinite);
    return (
      `  ${c.name}: best ${fmt(best(c))} delivered/s; highest rate carried with p99 < 100 ms: ${ok ? `${fmt(ok.delivered)}/s (p99 ${ok.p99.toFixed(1)} ms)` : 'none'}; ` +
      `${kb(c.idle!.rss)} RSS (${kb(c.idle!.heap)} heap) per idle subscriber from zero, ${kb(c.idle!.marginalRss)} RSS (${kb(c.idle!.marginalHeap)} heap) over the second half, ${kb(c.idle!.oldRss)} / ${kb(c.idle!.marginalOldRss)} RSS less the young generation; CPU per delivered event ${Math.min(...costs).toFixed(1)}-${Math.max(...costs).toFixed(1)} µs`
    );
  };
  console.log(
    [
      '',
      `summary (${fmt(SUBSCRIBERS)} subscribers over ${fmt(SUBJECTS)} subjects per server):`,
      line(gateway),
      line(bare),
      `  gateway / bare-ws ceiling: ${((best(gateway) / best(bare)) * 100).toFixed(0)}% (best delivered/s); slow consumers cut off by the gateway: ${counters.slowConsumers}`,
    ].join('\n'),
  );
}, 600_000);
