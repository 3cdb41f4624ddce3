import { EventEmitter } from 'node:events';
import { bootFailedReason, bootFailure } from './bootstrap.js';
import { DURATIONS, instanceType, TERMINATED_VISIBLE_SECONDS } from './catalog.js';
import type { InstanceDoc, Tags } from './model.js';
import type { CloudState } from './state.js';

/** The local cloud's time. Tests pass a manual one to step through boots without waiting. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A machine as the seam for simulated agents sees it. */
export interface MachineInfo {
  id: string;
  region: string;
  zone: string;
  instanceType: string;
  vcpus: number;
  memoryMiB: number;
  imageId: string;
  privateIp: string;
  tags: Tags;
  /** cloud-init user data, decoded. */
  userData?: string;
}

/** A machine reached `running`, or `terminated`. */
export interface MachineStateChange {
  type: 'running' | 'terminated';
  machine: MachineInfo;
  /** ISO-8601, on the cloud's clock. */
  at: string;
}

export type MachineListener = (change: MachineStateChange) => void;

/**
 * Machine state changes, for whatever runs beside machines: the simulated agent that each
 * machine will run (a later issue) subscribes here. Nothing else is promised.
 */
export class MachineEvents {
  private readonly emitter = new EventEmitter();

  /** Listens to every change; returns the function that stops listening. */
  on(listener: MachineListener): () => void {
    this.emitter.on('change', listener);
    return () => this.emitter.off('change', listener);
  }

  emit(change: MachineStateChange): void {
    for (const listener of this.emitter.listeners('change') as MachineListener[]) {
      try {
        listener(change);
      } catch {
        // A listener's failure is its own; the cloud goes on.
      }
    }
  }
}

export function machineInfo(doc: InstanceDoc): MachineInfo {
  return {
    id: doc.id,
    region: doc.region,
    zone: doc.zone,
    instanceType: doc.instanceType,
    vcpus: doc.vcpus,
    memoryMiB: doc.memoryMiB,
    imageId: doc.imageId,
    privateIp: doc.privateIp,
    tags: { ...doc.tags },
    ...(doc.userData ? { userData: Buffer.from(doc.userData, 'base64').toString('utf8') } : {}),
  };
}

export interface SimulatorOptions {
  /** Divides every duration: 1 is real time, 1000 makes a 60 s boot take 60 ms. */
  speed: number;
  /** The default regional vCPU limit. */
  vcpuLimit: number;
  clock: Clock;
  random: () => number;
  /**
   * Whether a cluster's machine without user data fails its boot (as one with user data that
   * would not make it a node always does). @default false: it boots, its agent from its tags
   */
  requireUserData?: boolean;
  /** Hears each machine whose bootstrap failed, and why. */
  onBootFailed?: (machine: MachineInfo, reason: string) => void;
}

/**
 * Time in the local cloud: machines boot (pending -> running; a cluster's machine whose user data
 * would not make it a node: pending -> stopping -> stopped, with the reason) and shut down
 * (shutting-down -> terminated), images copy and build (pending -> available), each after a realistic duration
 * divided by the speed factor. Due times are stored with the resources, so a restarted cloud
 * carries on where it stopped.
 */
export class Simulator {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly limits = new Map<string, number>();

  constructor(
    private readonly state: CloudState,
    private readonly options: SimulatorOptions,
    readonly events: MachineEvents,
    private readonly onError: (error: unknown) => void,
  ) {}

  now(): number {
    return this.options.clock.now();
  }

  /** Milliseconds of one of {@link DURATIONS}, drawn at random in its range and divided by the speed. */
  duration(kind: keyof typeof DURATIONS): number {
    const [min, max] = DURATIONS[kind];
    return ((min + (max - min) * this.options.random()) * 1000) / this.options.speed;
  }

  /** How long terminated instances stay visible, in ms. */
  terminatedVisibleMs(): number {
    return (TERMINATED_VISIBLE_SECONDS * 1000) / this.options.speed;
  }

  random(): number {
    return this.options.random();
  }

  vcpuLimit(region: string): number {
    return this.limits.get(region) ?? this.options.vcpuLimit;
  }

  setVcpuLimit(limit: number, region?: string): void {
    if (region) this.limits.set(region, limit);
    else {
      this.limits.clear();
      this.options.vcpuLimit = limit;
    }
  }

  /** vCPUs of pending and running instances: what the quota counts. */
  vcpuUsed(region: string): number {
    return this.state.instances
      .values()
      .filter((i) => i.region === region && (i.state === 'pending' || i.state === 'running'))
      .reduce((sum, i) => sum + (instanceType(i.instanceType)?.vcpus ?? i.vcpus), 0);
  }

  /** Applies every change that is due. Runs under `state.exclusive`. */
  async advance(): Promise<void> {
    const now = this.now();
    const changes: MachineStateChange[] = [];
    const failed: [MachineInfo, string][] = [];
    for (const instance of this.state.instances.values()) {
      if (instance.dueAt === null || instance.dueAt > now) continue;
      const at = new Date(instance.dueAt).toISOString();
      if (instance.state === 'pending') {
        const failure = bootFailure(machineInfo(instance), this.options.requireUserData ?? false);
        if (failure !== null) {
          // It never becomes a node: it shuts itself down, as a real machine whose cloud-init failed would be made to.
          const saved = await this.state.instances.put({
            ...instance,
            state: 'stopping',
            dueAt: instance.dueAt + this.duration('shutdown'),
            stateReason: bootFailedReason(failure),
          });
          failed.push([machineInfo(saved), failure]);
          continue;
        }
        const saved = await this.state.instances.put({ ...instance, state: 'running', dueAt: null });
        changes.push({ type: 'running', machine: machineInfo(saved), at });
      } else if (instance.state === 'stopping') {
        await this.state.instances.put({ ...instance, state: 'stopped', dueAt: null });
      } else if (instance.state === 'shutting-down') {
        const saved = await this.state.instances.put({
          ...instance,
          state: 'terminated',
          dueAt: null,
          terminatedAt: instance.dueAt,
          stateReason: {
            code: 'Client.UserInitiatedShutdown',
            message: 'Client.UserInitiatedShutdown: User initiated shutdown',
          },
        });
        changes.push({ type: 'terminated', machine: machineInfo(saved), at });
      } else {
        await this.state.instances.put({ ...instance, dueAt: null });
      }
    }
    for (const image of this.state.images.values()) {
      if (image.dueAt === null || image.dueAt > now) continue;
      await this.state.images.put({
        ...image,
        state: image.state === 'pending' ? 'available' : image.state,
        dueAt: null,
      });
    }
    for (const change of changes) this.events.emit(change);
    for (const [machine, reason] of failed) this.options.onBootFailed?.(machine, reason);
  }

  /** Sets one timer for the earliest due change. */
  schedule(): void {
    if (this.stopped) return;
    const due = [...this.state.instances.values(), ...this.state.images.values()]
      .map((d) => d.dueAt)
      .filter((d): d is number => d !== null);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (due.length === 0) return;
    const wait = Math.min(Math.max(Math.min(...due) - this.now(), 0), 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.state
        .exclusive(() => this.advance())
        .then(() => this.schedule())
        .catch(this.onError);
    }, wait);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
