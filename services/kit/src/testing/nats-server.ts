import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  generateNatsKeys,
  natsServerSecurityConfig,
  serviceCredentials,
  type NatsKeys,
} from '../nats-auth/nats-auth.js';

export interface NatsServer {
  url: string;
  port: number;
  /** The server's process id (to freeze it with SIGSTOP, or kill it, in an outage test). */
  pid: number;
  /** The keys it authenticates with: given (`security`), or generated for it. Pass them again to restart it on the same storage. */
  security: NatsKeys;
  /** Credentials of a platform process named `name` (a user of the platform account): what every client needs to connect. */
  credentials(name: string): Promise<string>;
  /** Stops the server and removes its JetStream directory. */
  stop(): Promise<void>;
}

export interface NatsServerOptions {
  /** @default `nats-server` on the PATH, or NATS_SERVER_BIN */
  binary?: string;
  /** @default a free port chosen by the server */
  port?: number;
  /** JetStream storage; kept on stop when given. @default a temporary directory, removed on stop */
  storeDir?: string;
  /** Receives the server's log output until it is ready. */
  onLog?: (text: string) => void;
  /**
   * The keys of its decentralised JWT authentication (nats-auth/nats-auth.ts): every client
   * needs credentials (`credentials(name)`), as wherever NATS runs. A server restarted on the same
   * `storeDir` needs the same keys (its JetStream data is the account's, its clients' credentials
   * the operator's). @default new keys (`generateNatsKeys()`)
   */
  security?: NatsKeys;
}

/**
 * Starts a real nats-server with JetStream on a free port (chosen by the server itself, so no
 * race), in a fresh storage directory, authenticating every connection (decentralised JWT: a
 * client without credentials of its operator cannot connect). Needs `nats-server` on the PATH
 * (Debian: nats-server).
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const security = options.security ?? generateNatsKeys();
  const dir = options.storeDir ?? (await mkdtemp(join(tmpdir(), 'fleetgraph-nats-')));
  const binary = options.binary ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  const configDir = await mkdtemp(join(tmpdir(), 'fleetgraph-nats-conf-'));
  const config = join(configDir, 'nats-server.conf');
  const args = ['-a', '127.0.0.1', '-p', String(options.port ?? -1), '-js', '-sd', dir, '-c', config];
  try {
    await writeFile(config, await natsServerSecurityConfig(security), { mode: 0o600 });
  } catch (error) {
    await rm(configDir, { recursive: true, force: true });
    throw error;
  }
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const started = new Promise<number>((resolve, reject) => {
    let output = '';
    let found: number | undefined;
    const timer = setTimeout(() => reject(new Error(`nats-server did not start in 10 s:\n${output}`)), 10_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${binary}: ${error.message} (install it: apt-get install -y nats-server)`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${output}`));
    });
    const onData = (chunk: Buffer) => {
      options.onLog?.(chunk.toString());
      output += chunk.toString();
      found ??= Number(/Listening for client connections on [^\s]+:(\d+)/.exec(output)?.[1]) || undefined;
      if (found && output.includes('Server is ready')) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.stderr!.off('data', onData);
        resolve(found);
      }
    };
    child.stderr!.on('data', onData);
  });
  let port: number;
  try {
    port = await started;
  } catch (error) {
    // Nothing left behind: the process (when it hangs) and what was made for it.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(configDir, { recursive: true, force: true });
    if (!options.storeDir) await rm(dir, { recursive: true, force: true });
    throw error;
  }
  child.stderr!.resume();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    security,
    credentials: (name) => serviceCredentials(security, name),
    async stop() {
      // Not exited yet (a process killed by a signal has no exit code, but a signal code).
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        // nats-server stops cleanly on SIGINT; SIGTERM can be ignored when inherited so.
        child.kill('SIGINT');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(killer);
      }
      if (!options.storeDir) await rm(dir, { recursive: true, force: true });
      await rm(configDir, { recursive: true, force: true });
    },
  };
}
