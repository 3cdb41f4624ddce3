import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getHeapSpaceStatistics } from 'node:v8';
import { connect, credsAuthenticator, type NatsConnection } from 'nats';
import { WebSocket, WebSocketServer } from 'ws';

/**
 * The processes of subscriptions.bench.ts, each in a process of its own so that its CPU and
 * memory are its own. Started by the benchmark through swc-hooks.mjs (TypeScript sources), one
 * role each:
 *
 *   gateway <widgets>  the widgets fixture platform of gateway/src/subscriptions (a real gateway,
 *                      its subgraph in the same process, and a nats-server process), with
 *                      `widgets` widgets over 10 tenants
 *   bare <nats-url>    the ceiling: a bare `ws` server speaking just enough graphql-transport-ws,
 *                      fed by core NATS subscriptions to the subjects it is given; each event's
 *                      frame is built once and sent as is to the sockets of its subject (NATS
 *                      credentials in NATS_CREDENTIALS: the server authenticates)
 *   clients            subscribers (raw `ws` clients speaking graphql-transport-ws) and the
 *                      publisher of their events, so that publish and receipt share one clock
 *
 * Each talks to the benchmark over the IPC channel: `ready` first, then answers what it is asked.
 */

/** NATS authenticates every connection: a credentials file's text. */
const authenticator = (credentials: string) => credsAuthenticator(new TextEncoder().encode(credentials));

export interface Widget {
  widgetId: string;
  subject: string;
  /** A bearer token of the widget's tenant. */
  token: string;
}

/** A server's counters. */
export interface Counters {
  subscriptions: number;
  connections: number;
  delivered: number;
  slowConsumers: number;
  /** The gateway's: authorisation queries run, and subscribes authorised from memory. */
  authorisations?: number;
  authorisationsRemembered?: number;
}

/** What one step of load measured on the subscribers' side. */
export interface StepResult {
  published: number;
  /** `next` frames received per second over the measuring window. */
  delivered: number;
  p50: number;
  p99: number;
  /** CPU of the subscribers and the publisher over the window, in cores. */
  cpu: number;
}

export type Request =
  /** Servers: memory (after a full GC when `gc`) and counters. */
  | { type: 'probe'; gc: boolean }
  /** The bare server: the subjects of the widgets it serves. */
  | { type: 'serve'; widgets: Widget[] }
  /** Clients: connect `count` subscribers to `wsUrl`, subscriber i watching widget i % widgets. */
  | { type: 'connect'; wsUrl: string; natsUrl: string; natsCredentials: string; widgets: Widget[]; count: number }
  /** Clients: publish at `rate` events a second for `warmMs + measureMs`, measure over the last `measureMs`. */
  | { type: 'step'; rate: number; warmMs: number; measureMs: number }
  /** Clients: close every subscriber. */
  | { type: 'disconnect' }
  | { type: 'stop' };

export type Report =
  | {
      type: 'ready';
      wsUrl?: string;
      natsUrl?: string;
      natsCredentials?: string;
      widgets?: Widget[];
      metricsUrl?: string;
    }
  | {
      type: 'probe';
      memory: NodeJS.MemoryUsage;
      spaces: Record<string, { size: number; used: number }>;
      counters: Counters;
    }
  | { type: 'served' }
  | { type: 'connected' }
  /** Clients: the measuring window of a step starts or ends (the benchmark reads the servers' CPU). */
  | { type: 'window'; edge: 'start' | 'end' }
  /** Clients: a step is over and its backlog drained (or given up on after 30 s). */
  | { type: 'step'; result: StepResult; lost: Record<string, number> }
  | { type: 'disconnected' }
  | { type: 'stopped' };

const TENANTS = 10;
const QUERY = 'subscription Events($id: ID!) { widgetEvents(widgetId: $id) { cursor widgetId n message } }';
const send = (report: Report) => process.send!(report);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Epoch milliseconds with microseconds: comparable across processes, unlike performance.now(). */
const now = () => performance.timeOrigin + performance.now();

interface Role {
  ready: Report & { type: 'ready' };
  handle(request: Request): Promise<Report | undefined>;
  stop(): Promise<void>;
}

/** The part of widgets.fixture.ts used here. Imported by URL: it lies outside this package's TypeScript project. */
interface Fixture {
  startWidgetsPlatform(subscriptions?: { patternConsumerAt?: number }): Promise<{
    nats: { url: string; credentials(name: string): Promise<string> };
    wsUrl: string;
    widget(tenantId: string, projectId: string): string;
    token(claims: { sub: string; tenantId: string; projects: Record<string, string> }): Promise<string>;
    gateway: { url: string; subscriptions: { stats(): Counters } };
    stop(): Promise<void>;
  }>;
  ids: { tenant(): string; project(): string };
  widgetEvent: { subject(payload: { tenantId: string; widgetId: string }): string };
}

function probe(counters: Counters, gc: boolean): Report {
  if (gc) {
    // Twice: the first pass can leave garbage that only the second finds.
    globalThis.gc?.();
    globalThis.gc?.();
  }
  const spaces = Object.fromEntries(
    getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]),
  );
  return { type: 'probe', memory: process.memoryUsage(), spaces, counters };
}

async function gateway(count: number): Promise<Role> {
  const fixture = (await import(
    new URL('../../gateway/src/subscriptions/widgets.fixture.js', import.meta.url).href
  )) as Fixture;
  // SUBSCRIPTIONS_BENCH_PATTERN_AT: the gateway's SUBSCRIPTION_PATTERN_CONSUMER_AT (its default when unset).
  const patternAt = process.env.SUBSCRIPTIONS_BENCH_PATTERN_AT;
  const platform = await fixture.startWidgetsPlatform(
    patternAt === undefined ? {} : { patternConsumerAt: Number(patternAt) },
  );
  const widgets: Widget[] = [];
  for (let t = 0; t < TENANTS; t++) {
    const tenantId = fixture.ids.tenant();
    const projectId = fixture.ids.project();
    const token = await platform.token({ sub: `bench-${t}`, tenantId, projects: { [projectId]: 'viewer' } });
    for (let w = t; w < count; w += TENANTS) {
      const widgetId = platform.widget(tenantId, projectId);
      widgets.push({ widgetId, subject: fixture.widgetEvent.subject({ tenantId, widgetId }), token });
    }
  }
  return {
    ready: {
      type: 'ready',
      wsUrl: platform.wsUrl,
      natsUrl: platform.nats.url,
      natsCredentials: await platform.nats.credentials('subscriptions-bench'),
      widgets,
      metricsUrl: new URL('/metrics', platform.gateway.url).href,
    },
    handle: async (request) =>
      request.type === 'probe' ? probe(platform.gateway.subscriptions.stats(), request.gc) : undefined,
    stop: () => platform.stop(),
  };
}

async function bare(natsUrl: string): Promise<Role> {
  const counters: Counters = { subscriptions: 0, connections: 0, delivered: 0, slowConsumers: 0 };
  /** Sockets by widget id, each subscribed with the client's id "1" (what the clients below send). */
  const watchers = new Map<string, Set<WebSocket>>();
  const credentials = process.env.NATS_CREDENTIALS;
  if (!credentials) throw new Error('bare: no NATS_CREDENTIALS');
  const nc = await connect({ servers: natsUrl, name: 'bare-ws-bench', authenticator: authenticator(credentials) });
  const decoder = new TextDecoder();
  const http = createServer();
  const wss = new WebSocketServer({ server: http, path: '/graphql' });
  wss.on('connection', (socket) => {
    let widgetId: string | undefined;
    counters.connections++;
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as {
        type: string;
        id?: string;
        payload?: { variables?: { id?: string } };
      };
      if (message.type === 'connection_init') socket.send('{"type":"connection_ack"}');
      else if (message.type === 'subscribe' && message.id === '1' && widgetId === undefined) {
        widgetId = String(message.payload?.variables?.id);
        watchers.get(widgetId)?.add(socket);
        counters.subscriptions++;
      }
    });
    socket.once('close', () => {
      counters.connections--;
      if (widgetId === undefined) return;
      watchers.get(widgetId)?.delete(socket);
      counters.subscriptions--;
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    ready: { type: 'ready', wsUrl: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/graphql` },
    async handle(request) {
      if (request.type === 'probe') return probe({ ...counters }, request.gc);
      if (request.type !== 'serve') return undefined;
      for (const { widgetId, subject } of request.widgets) {
        const sockets = new Set<WebSocket>();
        watchers.set(widgetId, sockets);
        nc.subscribe(subject, {
          callback: (_error, msg) => {
            // Pre-serialized: one frame per event, sent as is to every socket of the subject.
            const frame = `{"id":"1","type":"next","payload":{"data":{"widgetEvents":${decoder.decode(msg.data)}}}}`;
            for (const socket of sockets) {
              if (socket.readyState !== WebSocket.OPEN) continue;
              socket.send(frame);
              counters.delivered++;
            }
          },
        });
      }
      await nc.flush();
      return { type: 'served' };
    },
    async stop() {
      await nc.drain();
      for (const socket of wss.clients) socket.terminate();
      await new Promise((resolve) => wss.close(resolve));
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

/** Latencies in 0.1 ms buckets, up to a minute. */
class Histogram {
  private readonly buckets = new Uint32Array(600_000);
  private count = 0;
  record(ms: number) {
    this.buckets[Math.min(this.buckets.length - 1, Math.max(0, Math.floor(ms * 10)))]!++;
    this.count++;
  }
  percentile(p: number): number {
    const rank = Math.max(1, Math.ceil(this.count * p));
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return (i + 1) / 10;
    }
    return NaN;
  }
  reset() {
    this.buckets.fill(0);
    this.count = 0;
  }
}

const MESSAGE_KEY = '"message":"';
const QUOTE = 0x22;

function clients(): Role {
  let sockets: WebSocket[] = [];
  let widgets: Widget[] = [];
  let nc: NatsConnection | undefined;
  let closing = false;
  let frames = 0;
  const latency = new Histogram();
  const lost = new Map<string, number>();
  const lose = (what: string) => lost.set(what, (lost.get(what) ?? 0) + 1);
  const encoder = new TextEncoder();

  /** Connects raw graphql-transport-ws clients, at most 200 handshakes at a time; resolves once every `subscribe` is sent. */
  async function subscribe(url: string, count: number) {
    let inFlight = 0;
    let wake: (() => void) | undefined;
    for (let i = 0; i < count; i++) {
      while (inFlight >= 200) await new Promise<void>((resolve) => (wake = resolve));
      inFlight++;
      const widget = widgets[i % widgets.length]!;
      const socket = new WebSocket(url, 'graphql-transport-ws', { perMessageDeflate: false });
      sockets.push(socket);
      let acknowledged = false;
      const handshakeDone = () => {
        inFlight--;
        wake?.();
      };
      socket.on('open', () =>
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${widget.token}` } })),
      );
      socket.on('message', (data: Buffer) => {
        if (!acknowledged) {
          acknowledged = true;
          socket.send(
            JSON.stringify({
              id: '1',
              type: 'subscribe',
              payload: { query: QUERY, variables: { id: widget.widgetId } },
            }),
          );
          handshakeDone();
          return;
        }
        // The publish time is the event's message: read it without parsing the whole frame.
        const at = data.lastIndexOf(MESSAGE_KEY);
        if (at < 0) return void lose(`unexpected frame: ${data.toString().slice(0, 200)}`);
        const start = at + MESSAGE_KEY.length;
        latency.record(now() - Number(data.toString('latin1', start, data.indexOf(QUOTE, start))));
        frames++;
      });
      socket.on('error', (error) => lose(`error: ${error.message}`));
      socket.on('close', (code, reason) => {
        if (!acknowledged) handshakeDone();
        if (!closing) lose(`closed ${code} ${reason.toString()}`);
      });
    }
    while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve));
  }

  /** Publishes events round robin over the widgets at `rate` a second until stopped. */
  function publish(rate: number) {
    const started = performance.now();
    let published = 0;
    const timer = setInterval(() => {
      const due = Math.floor(((performance.now() - started) * rate) / 1000);
      for (; published < due; published++) {
        const widget = widgets[published % widgets.length]!;
        // The payload of WidgetEvent (the gateway fills `cursor`); `message` carries the publish time.
        nc!.publish(
          widget.subject,
          encoder.encode(`{"widgetId":"${widget.widgetId}","n":${published},"message":"${now().toFixed(3)}"}`),
        );
      }
    }, 2);
    return { published: () => published, stop: () => clearInterval(timer) };
  }

  async function step(rate: number, warmMs: number, measureMs: number): Promise<Report> {
    const publisher = publish(rate);
    await sleep(warmMs);
    frames = 0;
    latency.reset();
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    send({ type: 'window', edge: 'start' });
    await sleep(measureMs);
    send({ type: 'window', edge: 'end' });
    const seconds = (performance.now() - t0) / 1000;
    const used = process.cpuUsage(cpu);
    const result: StepResult = {
      published: publisher.published(),
      delivered: frames / seconds,
      p50: latency.percentile(0.5),
      p99: latency.percentile(0.99),
      cpu: (used.user + used.system) / 1e6 / seconds,
    };
    publisher.stop();
    // Let the backlog drain before the next step (or give up on it: the ladder stops anyway).
    for (let last = -1, waited = 0; frames !== last && waited < 30_000; waited += 250) {
      last = frames;
      await sleep(250);
    }
    return { type: 'step', result, lost: Object.fromEntries(lost) };
  }

  async function disconnect() {
    closing = true;
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.readyState === WebSocket.CLOSED) return resolve();
            socket.once('close', () => resolve());
            socket.terminate();
          }),
      ),
    );
    sockets = [];
    lost.clear();
    closing = false;
  }

  return {
    ready: { type: 'ready' },
    async handle(request) {
      switch (request.type) {
        case 'connect':
          widgets = request.widgets;
          nc ??= await connect({
            servers: request.natsUrl,
            name: 'subscriptions-bench-publisher',
            authenticator: authenticator(request.natsCredentials),
          });
          await subscribe(request.wsUrl, request.count);
          return { type: 'connected' };
        case 'step':
          return step(request.rate, request.warmMs, request.measureMs);
        case 'disconnect':
          await disconnect();
          return { type: 'disconnected' };
        default:
          return undefined;
      }
    },
    async stop() {
      await disconnect();
      await nc?.close();
    },
  };
}

async function main() {
  const [role, ...args] = process.argv.slice(2);
  const served =
    role === 'gateway'
      ? await gateway(Number(args[0]))
      : role === 'bare'
        ? await bare(args[0]!)
        : role === 'clients'
          ? clients()
          : undefined;
  if (!served)
    throw new Error(`usage: subscriptions.child.ts gateway <widgets> | bare <nats-url> | clients; not ${role}`);
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= served.stop().catch((error: unknown) => console.error(`${role} could not stop cleanly`, error)));
  process.on('message', (request: Request) => {
    if (request.type === 'stop') {
      void stop().then(() => {
        send({ type: 'stopped' });
        // A normal exit, so that --cpu-prof writes its profile.
        process.disconnect();
      });
      return;
    }
    served.handle(request).then(
      (report) => report && send(report),
      (error: unknown) => {
        console.error(`${role} failed at ${request.type}`, error);
        process.exit(1);
      },
    );
  });
  // The benchmark went away (or said stop): do not outlive it.
  process.once('disconnect', () => void stop().then(() => process.exit(0)));
  send(served.ready);
}

await main();
