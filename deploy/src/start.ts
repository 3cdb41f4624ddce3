import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  DEV_INTERNAL_SECRET,
  DEV_JWT_SECRET,
  generateNatsKeys,
  serviceCredentials,
  SUBGRAPHS,
  subgraphUrlVariable,
  type NatsKeys,
} from '@fleetgraph/kit/core';
import { type NatsCluster, type NatsServer, startNatsCluster, startNatsServer } from '@fleetgraph/kit/testing';
import { choosePort, isFree } from './ports.js';

/**
 * `pnpm start`: the whole platform on this machine. nats-server (unless NATS_URL is set),
 * the local cloud, every subgraph service and the gateway, each its own process, with
 * embedded storage under DATA_DIR. Ctrl-C stops everything it started.
 *
 * The gateway listens on PORT (default 4000), which must be free. The internal processes take
 * their usual ports (NATS 4222, local cloud 4566, subgraphs 4001-4005) when free and any free
 * port otherwise, unless NATS_PORT, LOCAL_CLOUD_PORT or <SUBGRAPH>_PORT name one.
 *
 * `pnpm start --replicas N` runs the platform scaled out, to try failover on one machine: a
 * three-node NATS cluster (streams on three nodes; its storage is temporary), N replicas of every
 * service sharing its store, and N gateways (PORT, PORT+1, ...) each given every replica's URL.
 * A process that dies then leaves the others running.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const env = process.env;
const dataDir = resolve(env.DATA_DIR || `${root}.data`);
const gatewayPort = Number(env.PORT || 4000);
const colors = [36, 32, 33, 35, 34, 31, 96, 92];
const replicasArg = process.argv.indexOf('--replicas');
const replicas = replicasArg >= 0 ? Number(process.argv[replicasArg + 1]) : 1;
if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
  console.error('--replicas takes a number from 1 to 5');
  process.exit(2);
}

interface Child {
  name: string;
  process: ChildProcess;
}
const children: Child[] = [];
let nats: NatsServer | undefined;
let natsCluster: NatsCluster | undefined;
let stopping = false;

/** Prints a child's pino lines compactly: `[name] LEVEL message {rest}`. */
function pipeOutput(name: string, child: ChildProcess, color: number) {
  const levels: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
  const prefix = `\x1b[${color}m${name.padEnd(12)}\x1b[0m`;
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      try {
        const { level, msg, time: _t, pid: _p, hostname: _h, name: _n, service: _s, ...rest } = JSON.parse(line);
        const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
        console.log(`${prefix} ${levels[level] ?? level} ${msg}${extra}`);
      } catch {
        console.log(`${prefix} ${line}`);
      }
    });
  }
}

/**
 * The NATS operator and account keys of this installation: generated on the first start and
 * kept under DATA_DIR (readable by its owner only), so that restarts keep their streams' users.
 */
function natsKeys(): NatsKeys {
  const file = `${dataDir}/nats/keys.json`;
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as NatsKeys;
  const keys = generateNatsKeys();
  writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  chmodSync(file, 0o600);
  return keys;
}

function startService(name: string, entry: string, extraEnv: NodeJS.ProcessEnv) {
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`pnpm build\` first`);
  const child = spawn(process.execPath, [entry], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  pipeOutput(name, child, colors[children.length % colors.length]!);
  child.once('exit', (code, signal) => {
    if (stopping) return;
    if (replicas > 1) {
      console.error(`${name} exited (${signal ?? code}); its replicas carry on`);
      return;
    }
    console.error(`${name} exited (${signal ?? code}); stopping the platform`);
    void stop(1);
  });
  children.push({ name, process: child });
}

async function waitReady(name: string, url: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopping) return;
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} was not ready at ${url} after ${timeoutMs / 1000} s`);
}

function ensureNatsServer() {
  if (spawnSync('nats-server', ['--version']).status === 0) return;
  if (process.getuid?.() === 0) {
    console.log("nats-server is missing: installing it from Debian's packages");
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    if (spawnSync('apt-get', ['install', '-y', '-qq', 'nats-server'], { stdio: 'inherit' }).status === 0) return;
  }
  throw new Error(
    'nats-server is missing. Install it (as root: apt-get install -y nats-server), or set NATS_URL to a NATS server with JetStream.',
  );
}

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  for (const child of [...children].reverse()) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) continue;
    const exited = new Promise((r) => child.process.once('exit', r));
    child.process.kill('SIGTERM');
    const killer = setTimeout(() => child.process.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
  await nats?.stop();
  await natsCluster?.stop();
  process.exit(code);
}

async function main() {
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  mkdirSync(dataDir, { recursive: true });
  if (!(await isFree(gatewayPort)))
    throw new Error(`port ${gatewayPort} is in use: stop what listens there, or start with another PORT`);
  const gatewayOrigin = `http://localhost:${gatewayPort}`;

  let natsUrl = env.NATS_URL;
  // With its own nats-server, every process connects as its own user (decentralised JWT auth);
  // with NATS_URL, the operator gives NATS_CREDENTIALS (and NATS_ACCOUNT_SEED for clusters).
  let keys: NatsKeys | undefined;
  if (!natsUrl) {
    ensureNatsServer();
    mkdirSync(`${dataDir}/nats`, { recursive: true });
    keys = natsKeys();
    if (replicas > 1) {
      natsCluster = await startNatsCluster({ size: 3, security: keys });
      natsUrl = natsCluster.url;
      console.log(`a three-node NATS cluster with JetStream and authentication on ${natsUrl}`);
    } else {
      const { port, note } = await choosePort('nats-server', 'NATS_PORT', env.NATS_PORT, 4222);
      if (note) console.log(note);
      nats = await startNatsServer({ port, storeDir: `${dataDir}/nats`, security: keys });
      natsUrl = nats.url;
      console.log(`nats-server with JetStream and authentication on ${natsUrl}`);
    }
  }
  const own = async (name: string): Promise<NodeJS.ProcessEnv> =>
    keys
      ? {
          NATS_CREDENTIALS: await serviceCredentials(keys, name),
          ...(name === 'clusters' ? { NATS_ACCOUNT_SEED: keys.accountSeed } : {}),
        }
      : {};
  const localCloud = `${root}services/local-cloud/dist/main.js`;
  const runLocalCloud = existsSync(localCloud) && !env.LOCAL_CLOUD_URL;
  const localCloudPort = runLocalCloud
    ? await choosePort('local-cloud', 'LOCAL_CLOUD_PORT', env.LOCAL_CLOUD_PORT, 4566)
    : undefined;
  if (localCloudPort?.note) console.log(localCloudPort.note);
  const common: NodeJS.ProcessEnv = {
    NATS_URL: natsUrl,
    DATA_DIR: dataDir,
    AUTH_JWT_SECRET: env.AUTH_JWT_SECRET || DEV_JWT_SECRET,
    INTERNAL_AUTH_SECRET: env.INTERNAL_AUTH_SECRET || DEV_INTERNAL_SECRET,
    LOCAL_CLOUD_URL: env.LOCAL_CLOUD_URL || `http://127.0.0.1:${localCloudPort?.port ?? 4566}`,
    // Links the API hands out point at the gateway, wherever it listens.
    PUBLIC_URL: env.PUBLIC_URL || `${gatewayOrigin}/graphql`,
    // Webhooks to a receiver on this machine (what a developer runs): loopback is allowed here only.
    WEBHOOK_ALLOWED_CIDRS: env.WEBHOOK_ALLOWED_CIDRS ?? '127.0.0.0/8,::1/128',
    ...(natsCluster ? { NATS_STREAM_REPLICAS: '3' } : {}),
  };

  if (localCloudPort) {
    startService('local-cloud', localCloud, {
      ...common,
      ...(await own('local-cloud')),
      PORT: String(localCloudPort.port),
      DATA_DIR: `${dataDir}/local-cloud`,
    });
    await waitReady('local-cloud', `http://127.0.0.1:${localCloudPort.port}/healthz`);
  }
  const subgraphUrls: NodeJS.ProcessEnv = {};
  const ports = new Map<string, number>();
  for (const subgraph of SUBGRAPHS) {
    const urls: string[] = [];
    for (let i = 1; i <= replicas; i++) {
      const name = replicas > 1 ? `${subgraph.name}-${i}` : subgraph.name;
      const variable = `${subgraph.name.toUpperCase()}_PORT`;
      const { port, note } =
        i === 1
          ? await choosePort(name, variable, env[variable], subgraph.port)
          : await choosePort(name, `${variable}_${i}`, undefined, subgraph.port + 10 * (i - 1));
      if (note) console.log(note);
      ports.set(name, port);
      urls.push(`http://127.0.0.1:${port}/graphql`);
      startService(name, `${root}services/${subgraph.name}/dist/main.js`, {
        ...common,
        ...(await own(subgraph.name)),
        PORT: String(port),
      });
    }
    subgraphUrls[subgraphUrlVariable(subgraph.name)] = urls.join(',');
  }
  await Promise.all([...ports].map(([name, port]) => waitReady(name, `http://127.0.0.1:${port}/readyz`)));
  const gateways: string[] = [];
  for (let i = 1; i <= replicas; i++) {
    const port =
      i === 1 ? gatewayPort : (await choosePort(`gateway-${i}`, `PORT_${i}`, undefined, gatewayPort + i - 1)).port;
    const name = replicas > 1 ? `gateway-${i}` : 'gateway';
    startService(name, `${root}gateway/dist/main.js`, {
      ...common,
      ...subgraphUrls,
      ...(await own('gateway')),
      PORT: String(port),
    });
    await waitReady(name, `http://127.0.0.1:${port}/readyz`);
    gateways.push(`http://localhost:${port}/graphql`);
  }
  if (replicas > 1) console.log(`\n  ${replicas} gateways: ${gateways.join(', ')}`);

  console.log(`
  Fleetgraph is up: ${gatewayOrigin}/graphql (data in ${dataDir})
  Dashboard:         ${gatewayOrigin}/ (sign in with a token from pnpm token)

  Get a development token:   pnpm token --tenant acme --project web=admin
  Then send it as the header Authorization: Bearer <token>. Ctrl-C stops everything.
`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  void stop(1);
});
