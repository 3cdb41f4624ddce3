import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, credsAuthenticator, Empty } from 'nats';
import {
  generateNatsKeys,
  natsServerSecurityConfig,
  serviceCredentials,
  type NatsKeys,
} from '../nats-auth/nats-auth.js';
import { freePort } from './free-port.js';

/** One nats-server of a `startNatsCluster()` cluster. */
export interface NatsClusterNode {
  /** Its `server_name`: what stream info's `cluster.leader` and `cluster.replicas[].name` say. */
  readonly name: string;
  /** Its own client URL (`url` of the cluster names every node). */
  readonly url: string;
  readonly port: number;
  /** Where the other nodes route to it. */
  readonly clusterPort: number;
  /** The id of its current process (or of the last one, while it is down). */
  readonly pid: number;
  /** Whether its process runs. */
  readonly running: boolean;
  /** The end of what it logged (the last 32 KiB, over its restarts), to explain a failure. */
  readonly log: string;
  /** SIGKILL: a crash, no goodbye to the cluster. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and JetStream storage; resolves once it is ready and knows the metadata leader. */
  start(): Promise<void>;
  /** Stops it cleanly (SIGINT, SIGKILL after 5 s), keeping its storage. */
  stop(): Promise<void>;
}

export interface NatsCluster {
  /** The client URLs of every node, comma-separated (what `createBus` takes). */
  url: string;
  nodes: NatsClusterNode[];
  /** The node whose `server_name` is `name` (a stream's `cluster.leader`). @throws when none is */
  node(name: string): NatsClusterNode;
  /** The keys every node authenticates with (generated unless given). */
  security: NatsKeys;
  /** Credentials of a platform process named `name` (a user of the platform account), valid on every node. */
  credentials(name: string): Promise<string>;
  /** Stops every node and removes the storage and configuration. */
  stop(): Promise<void>;
}

export interface NatsClusterOptions {
  /** Number of nodes, at least 2. @default 3 */
  size?: number;
  /** @default `nats-server` on the PATH, or NATS_SERVER_BIN */
  binary?: string;
  /** The keys of the decentralised JWT authentication, the same on every node. @default new keys */
  security?: NatsKeys;
  /** The cluster's name. @default `fleetgraph-test` */
  name?: string;
  /** Receives every node's log output, for as long as it runs. */
  onLog?: (node: string, text: string) => void;
  /** How long the cluster (or a restarted node) may take to be ready. @default 20 s */
  readyTimeoutMs?: number;
}

const READY = 'Server is ready';
const ROUTES_LISTENING = 'Listening for route connections';
const META_LEADER = /Self is new JetStream cluster metadata leader|JetStream cluster new (?:remote )?metadata leader/;
/** How much of each node's log is kept, for the error when it does not start. */
const LOG_TAIL = 32 * 1024;

/** `size` distinct ports that were free a moment ago. */
async function freePorts(size: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < size) ports.add(await freePort());
  return [...ports];
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Starts a cluster of real nats-servers (3 by default) on loopback, JetStream clustered, each
 * authenticating with the same keys (decentralised JWT, as `startNatsServer()`), for tests of
 * replicated streams and of a node's loss (`nodes[i].kill()`, `start()`). Resolves once every node
 * is ready, knows the JetStream metadata leader, and the cluster answers `$JS.API.INFO`. The ports
 * are chosen before the nodes start (each must name the others' routes): when one was taken in
 * the meantime, the whole cluster starts again on new ones. Needs `nats-server` on the PATH.
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStartNatsCluster(options);
    } catch (error) {
      if (attempt < 3 && /address already in use/i.test((error as Error).message)) continue;
      throw error;
    }
  }
}

async function tryStartNatsCluster(options: NatsClusterOptions): Promise<NatsCluster> {
  const size = options.size ?? 3;
  // nats-server refuses clustered JetStream without routes: one node is `startNatsServer()`'s.
  if (!Number.isInteger(size) || size < 2)
    throw new RangeError(`a NATS cluster has at least 2 nodes, not ${size} (one is startNatsServer())`);
  const security = options.security ?? generateNatsKeys();
  const binary = options.binary ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  const clusterName = options.name ?? 'fleetgraph-test';
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  const dir = await mkdtemp(join(tmpdir(), 'fleetgraph-nats-cluster-'));
  const nodes: ClusterNode[] = [];
  try {
    const ports = await freePorts(size * 2);
    // One text for every node: the JWTs carry their issue time, and the nodes must agree on them.
    const securityConfig = await natsServerSecurityConfig(security);
    const names = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    for (const [i, name] of names.entries()) {
      const port = ports[i]!;
      const clusterPort = ports[size + i]!;
      const storeDir = join(dir, name);
      await mkdir(storeDir, { mode: 0o700 });
      const routes = names.flatMap((_, j) => (j === i ? [] : [`nats-route://127.0.0.1:${ports[size + j]}`]));
      const config = join(dir, `${name}.conf`);
      await writeFile(
        config,
        [
          securityConfig,
          `server_name: ${name}`,
          `listen: 127.0.0.1:${port}`,
          `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
          `cluster { name: ${clusterName}, listen: 127.0.0.1:${clusterPort}, routes: [${routes.map((r) => JSON.stringify(r)).join(', ')}] }`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      nodes.push(new ClusterNode(name, port, clusterPort, binary, config, options.onLog));
    }
    // One after the other, each once the one before takes routes: two nodes dialling each other
    // at the same moment make duplicate routes, and nats-server 2.9 can then close both, leaving
    // a node that never hears of the metadata leader. The elections wait for all of them.
    const readies: Promise<void>[] = [];
    for (const node of nodes) {
      const { listening, ready } = node.launch(readyTimeoutMs);
      readies.push(ready);
      ready.catch(() => {});
      await listening;
    }
    const started = await Promise.allSettled(readies);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const url = nodes.map((node) => node.url).join(',');
    await waitForJetStream(url, await serviceCredentials(security, 'nats-cluster-probe'), readyTimeoutMs);
  } catch (error) {
    await Promise.allSettled(nodes.map((node) => node.kill()));
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: nodes.map((node) => node.url).join(','),
    nodes,
    node(name) {
      const node = nodes.find((n) => n.name === name);
      if (!node) throw new Error(`no node named ${name} (nodes: ${nodes.map((n) => n.name).join(', ')})`);
      return node;
    },
    security,
    credentials: (name) => serviceCredentials(security, name),
    async stop() {
      await Promise.allSettled(nodes.map((node) => node.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Until the cluster's JetStream answers an account info request (its metadata leader does) without an error. */
async function waitForJetStream(url: string, credentials: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const connection = await connect({
    servers: url.split(','),
    name: 'nats-cluster-probe',
    authenticator: credsAuthenticator(new TextEncoder().encode(credentials)),
    timeout: Math.min(5_000, timeoutMs),
  });
  let last = '';
  try {
    while (Date.now() < deadline) {
      try {
        const reply = await connection.request('$JS.API.INFO', Empty, { timeout: 1_000 });
        const info = reply.json<{ error?: { code: number; description: string } }>();
        if (!info.error) return;
        last = `${info.error.code} ${info.error.description}`;
      } catch (error) {
        last = (error as Error).message;
      }
      await delay(50);
    }
    throw new Error(`the NATS cluster's JetStream did not answer in ${timeoutMs} ms: ${last}`);
  } finally {
    await connection.close();
  }
}

class ClusterNode implements NatsClusterNode {
  readonly url: string;
  #child: ChildProcess | undefined;
  #pid = 0;
  #log = '';

  constructor(
    readonly name: string,
    readonly port: number,
    readonly clusterPort: number,
    private readonly binary: string,
    private readonly config: string,
    private readonly onLog: ((node: string, text: string) => void) | undefined,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
  }

  get pid(): number {
    return this.#pid;
  }

  get running(): boolean {
    const child = this.#child;
    return !!child && child.exitCode === null && child.signalCode === null;
  }

  /** Starts the process; resolves once it is ready and has logged the metadata leader. */
  async start(timeoutMs = 20_000): Promise<void> {
    await this.launch(timeoutMs).ready;
  }

  /**
   * Starts the process. `listening`: once it takes route connections; `ready`: once it takes
   * clients and has logged the metadata leader (both reject when it exits or times out first).
   */
  launch(timeoutMs: number): { listening: Promise<void>; ready: Promise<void> } {
    if (this.running) throw new Error(`${this.name} is running`);
    const child = spawn(this.binary, ['-c', this.config], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    this.#pid = child.pid ?? 0;
    let output = '';
    let routes = false;
    let ready = false;
    let leader = false;
    let settleListening: ((error?: Error) => void) | undefined;
    let settle: ((error?: Error) => void) | undefined;
    const listening = new Promise<void>((resolve, reject) => {
      settleListening = (error) => {
        settleListening = undefined;
        if (error) reject(error);
        else resolve();
      };
    });
    const settled = new Promise<void>((resolve, reject) => {
      settle = (error) => {
        settle = undefined;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
    });
    // Whoever awaits only one of them, the other's rejection is no unhandled one.
    listening.catch(() => {});
    const fail = (error: Error) => {
      if (this.running) child.kill('SIGKILL');
      settleListening?.(error);
      settle?.(error);
    };
    const timer = setTimeout(
      () =>
        fail(
          new Error(
            `${this.name} was not ready in ${timeoutMs} ms (routes: ${routes}, ready: ${ready}, metadata leader: ${leader}):\n${output}`,
          ),
        ),
      timeoutMs,
    );
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      this.onLog?.(this.name, text);
      this.#log = (this.#log + text).slice(-LOG_TAIL);
      if (!settle) return;
      output = (output + text).slice(-LOG_TAIL);
      routes ||= output.includes(ROUTES_LISTENING);
      ready ||= output.includes(READY);
      leader ||= META_LEADER.test(output);
      if (routes) settleListening?.();
      if (routes && ready && leader) settle?.();
    });
    child.once('error', (error) =>
      fail(new Error(`cannot run ${this.binary}: ${error.message} (install it: apt-get install -y nats-server)`)),
    );
    child.once('exit', (code, signal) => fail(new Error(`${this.name} exited with ${code ?? signal}:\n${output}`)));
    return { listening, ready: settled };
  }

  async kill(): Promise<void> {
    await this.#signal('SIGKILL', 0);
  }

  async stop(): Promise<void> {
    // nats-server stops cleanly on SIGINT; SIGTERM can be ignored when inherited so.
    await this.#signal('SIGINT', 5_000);
  }

  /** The last lines it logged. */
  get log(): string {
    return this.#log;
  }

  async #signal(signal: NodeJS.Signals, killAfterMs: number): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const killer = killAfterMs ? setTimeout(() => child.kill('SIGKILL'), killAfterMs) : undefined;
    await exited;
    clearTimeout(killer);
  }
}
