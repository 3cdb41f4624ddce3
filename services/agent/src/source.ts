import type { PackLayerMessage } from '@fleetgraph/schema';

/** A pack installed in the cluster. */
export interface InstalledPack {
  name: string;
  version: string;
}

/**
 * What the agent observes and changes in its cluster. Two implementations: a simulated
 * cluster (run by the local cloud) and, for real clusters, one that reads the Kubernetes API.
 */
export interface AgentSource {
  /** Installs (or upgrades to) the packs; returns what was installed and what failed. */
  applyPacks(
    packs: readonly PackLayerMessage[],
  ): Promise<{ installed: InstalledPack[]; failed: (InstalledPack & { message: string })[] }>;
  /** Packs currently installed. */
  installedPacks(): InstalledPack[];
}
