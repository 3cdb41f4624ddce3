import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createStore, type Store } from '@fleetgraph/kit/store';
import { pino, type Logger } from 'pino';
import { createApp } from './server.js';
import { Faults, type FaultSettings } from './faults.js';
import { seed } from './seed.js';
import {
  machineInfo,
  MachineEvents,
  Simulator,
  systemClock,
  type Clock,
  type MachineInfo,
  type MachineListener,
} from './simulator.js';
import { CloudState } from './state.js';

export interface LocalCloudOptions {
  /** Where its state lives. @default a SQLite store under `dataDir` */
  store?: Store;
  /** The directory of the SQLite file when no `store` is given. @default './.data' */
  dataDir?: string;
  /** @default 0: any free port */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Divides every duration (boot, shutdown, image copy and build). @default 1 */
  speed?: number;
  /** The vCPU quota of each region, counting pending and running machines. @default 64 */
  vcpuLimit?: number;
  /** Faults to start with; changeable at runtime through `/_admin/faults`. @default none */
  faults?: Partial<FaultSettings>;
  /** @default the system clock */
  clock?: Clock;
  /** @default Math.random */
  random?: () => number;
  /** @default a silent logger */
  logger?: Logger;
  /**
   * Whether a cluster's machine (tagged with a cluster and a tenant) without user data fails its
   * boot, as one whose user data would not make it a node always does (see bootstrap.ts).
   * @default false: it boots, and its cluster's agent starts from its tags
   */
  requireUserData?: boolean;
  /**
   * Hears machine state changes from the very start, including those a restarted cloud
   * applies while it loads (machines that finished booting while it was down).
   */
  onMachineStateChange?: MachineListener;
}

export interface LocalCloud {
  /** The EC2 endpoint, e.g. `http://127.0.0.1:4566`. */
  url: string;
  /** Machine state changes (running, terminated): the seam for simulated agents. */
  machineEvents: MachineEvents;
  /** Machines that are running now (for agents that start after the cloud). */
  runningMachines(): MachineInfo[];
  /** Where cluster agents keep their renewed NATS credentials (the local cloud's store), by cluster id. */
  agentCredentials: AgentCredentialsStore;
  /** Applies every change that is due now: for tests that drive a manual clock. */
  advance(): Promise<void>;
  /** Stops listening and, when it opened the store itself, closes it. */
  close(): Promise<void>;
}

/** Cluster agents' renewed NATS credentials, kept across restarts of the local cloud. */
export interface AgentCredentialsStore {
  get(clusterId: string): string | undefined;
  put(clusterId: string, creds: string): Promise<void>;
}

/** Starts a local cloud: loads (or seeds) its state and listens. */
export async function startLocalCloud(options: LocalCloudOptions = {}): Promise<LocalCloud> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const ownStore = !options.store;
  const store = options.store ?? (await createStore({ dataDir: options.dataDir ?? './.data', service: 'local-cloud' }));
  try {
    const state = await CloudState.open(store);
    const random = options.random ?? Math.random;
    const events = new MachineEvents();
    if (options.onMachineStateChange) events.on(options.onMachineStateChange);
    const sim = new Simulator(
      state,
      {
        speed: options.speed ?? 1,
        vcpuLimit: options.vcpuLimit ?? 64,
        clock: options.clock ?? systemClock,
        random,
        requireUserData: options.requireUserData ?? false,
        onBootFailed: (machine, reason) =>
          logger.warn({ machineId: machine.id, tags: machine.tags, reason }, 'machine bootstrap failed: it is stopped'),
      },
      events,
      (error) => logger.error({ err: error }, 'simulation step failed'),
    );
    const faults = new Faults(
      { errorRate: 0, lostResponseRate: 0, throttlePerSecond: 0, inject: [], ...options.faults },
      random,
    );
    await state.exclusive(async () => {
      await seed(state);
      await sim.advance();
    });
    sim.schedule();

    let url = '';
    const app = createApp({ state, sim, faults, logger, endpoint: () => url, ready: () => store.ping() });
    const server: Server = await new Promise((resolve, reject) => {
      const s = app.listen(options.port ?? 0, options.host ?? '127.0.0.1', (error?: Error) =>
        error ? reject(error) : resolve(s),
      );
    });
    const address = server.address() as AddressInfo;
    url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    logger.info({ url }, 'local cloud listening');

    return {
      url,
      machineEvents: events,
      runningMachines: () =>
        state.instances
          .values()
          .filter((m) => m.state === 'running')
          .map(machineInfo),
      agentCredentials: {
        get: (clusterId) => state.agentCredentials.get(clusterId)?.creds,
        put: async (clusterId, creds) => {
          await state.exclusive(() =>
            state.agentCredentials.put({ id: clusterId, creds, updatedAt: new Date().toISOString() }),
          );
        },
      },
      advance: async () => {
        await state.exclusive(() => sim.advance());
        sim.schedule();
      },
      close: async () => {
        sim.stop();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        // Let a step in flight finish before the store goes.
        await state.exclusive(async () => undefined);
        if (ownStore) await store.close();
      },
    };
  } catch (error) {
    if (ownStore) await store.close();
    throw error;
  }
}
