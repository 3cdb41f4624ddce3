import type { NodeRole, PackLayerMessage } from '@fleetgraph/schema';
import type { AgentSource, InstalledPack } from './source.js';

/** A node of a simulated cluster: one machine of the local cloud. */
export interface SimulatedNode {
  name: string;
  role: NodeRole;
  pool: string;
  zone: string;
  instanceType: string;
  vcpus: number;
  memoryMiB: number;
  privateIp: string | null;
  /** ISO-8601: when the machine started running. */
  runningSince: string;
}

export interface SimulatedOptions {
  /** Divides simulated durations (pack installs take ~5-20 s at 1). @default 1 */
  speed?: number;
  /** Packs whose install fails, by name: for tests. */
  failingPacks?: ReadonlySet<string>;
  /** The cluster's nodes now: the local cloud's running machines of the cluster. @default none */
  nodes?: () => SimulatedNode[];
}

/**
 * A simulated cluster, the one model every simulated observation derives from (nodes from
 * the local cloud's machines, installed packs), so that reports, logs and manifests agree.
 * Pack installs take time that looks real, and can be made to fail.
 */
export class SimulatedSource implements AgentSource {
  private readonly installed = new Map<string, string>();
  private readonly listeners = new Set<() => void>();

  constructor(readonly options: SimulatedOptions = {}) {}

  /** The speed factor durations are divided by. */
  get speed(): number {
    return this.options.speed ?? 1;
  }

  nodes(): SimulatedNode[] {
    return this.options.nodes?.() ?? [];
  }

  /** Hears that the simulated cluster's nodes or services changed; returns the function that stops listening. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Says that the nodes changed (a machine joined or left), or that installed packs brought services. */
  changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  async applyPacks(packs: readonly PackLayerMessage[]) {
    const installed: InstalledPack[] = [];
    const failed: (InstalledPack & { message: string })[] = [];
    for (const pack of packs) {
      if (this.installed.get(pack.name) === pack.version) {
        installed.push({ name: pack.name, version: pack.version });
        continue;
      }
      await sleep((5_000 + Math.random() * 15_000) / this.speed);
      if (this.options.failingPacks?.has(pack.name)) {
        failed.push({
          name: pack.name,
          version: pack.version,
          message: `helm install ${pack.name} failed: timed out waiting for the condition`,
        });
        continue;
      }
      this.installed.set(pack.name, pack.version);
      installed.push({ name: pack.name, version: pack.version });
    }
    // An add-on may bring services (a LoadBalancer in front of it, say).
    if (installed.length > 0) this.changed();
    return { installed, failed };
  }

  installedPacks(): InstalledPack[] {
    return [...this.installed].map(([name, version]) => ({ name, version }));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
