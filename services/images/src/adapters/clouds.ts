import { createProvider, type CloudProvider, type Region } from '@fleetgraph/clouds';
import type { ConfiguredCatalogue } from '../domain/catalogue.js';
import type { CloudType } from '../domain/image.js';

/** How the out-of-the-box images of a cloud are found. */
export type CatalogueSource =
  /** Search the cloud's tagged images (the local cloud publishes them in `sourceRegion`). */
  | { kind: 'discover'; sourceRegion: string }
  /** Image ids per catalogue entry and region, from configuration (AWS, Azure). */
  | { kind: 'configured'; images: ConfiguredCatalogue };

/** One cloud the service can work on. */
export interface CloudSettings {
  type: CloudType;
  provider: CloudProvider;
  catalogue: CatalogueSource;
  /** The machine size of image builders. */
  builderInstanceType: string;
  /**
   * Whether builder runs are simulated (the local cloud runs no user data) rather than awaited
   * (the builder's cloud-init powers it off when done).
   */
  simulateBuilds: boolean;
}

/** The clouds the service is configured for, with their regions cached. */
export class Clouds {
  private readonly byType = new Map<CloudType, CloudSettings>();
  private readonly regionCache = new Map<CloudType, { at: number; regions: Promise<Region[]> }>();

  constructor(
    settings: readonly CloudSettings[],
    private readonly regionCacheMs = 5 * 60_000,
  ) {
    for (const s of settings) this.byType.set(s.type, s);
  }

  get(type: CloudType): CloudSettings | undefined {
    return this.byType.get(type);
  }

  get configured(): CloudSettings[] {
    return [...this.byType.values()];
  }

  /** The cloud's regions, asked at most once per cache period; a failure is not cached. */
  async regions(type: CloudType): Promise<Region[]> {
    const settings = this.byType.get(type);
    if (!settings) return [];
    const cached = this.regionCache.get(type);
    if (cached && Date.now() - cached.at < this.regionCacheMs) return cached.regions;
    const regions = settings.provider.regions();
    this.regionCache.set(type, { at: Date.now(), regions });
    regions.catch(() => this.regionCache.delete(type));
    return regions;
  }

  async region(type: CloudType, name: string): Promise<Region | null> {
    return (await this.regions(type)).find((r) => r.name === name) ?? null;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.byType.values()].map((s) => s.provider.close()));
  }
}

/** What configures the clouds: see env.ts and the README. */
export interface CloudsConfig {
  local: { url: string; sourceRegion: string; builderInstanceType: string } | null;
  aws: {
    region: string;
    credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
    endpoint?: string;
    catalogue: ConfiguredCatalogue;
    builderInstanceType: string;
  } | null;
  azure: {
    region: string;
    subscriptionId: string;
    resourceGroup: string;
    credentials?: { tenantId: string; clientId: string; clientSecret: string };
    catalogue: ConfiguredCatalogue;
    builderInstanceType: string;
  } | null;
}

/** Creates a provider per configured cloud (no cloud is called here). */
export function createClouds(config: CloudsConfig): Clouds {
  const settings: CloudSettings[] = [];
  if (config.local) {
    settings.push({
      type: 'LOCAL',
      provider: createProvider({ type: 'LOCAL', endpoint: config.local.url }),
      catalogue: { kind: 'discover', sourceRegion: config.local.sourceRegion },
      builderInstanceType: config.local.builderInstanceType,
      simulateBuilds: true,
    });
  }
  if (config.aws) {
    const { catalogue, builderInstanceType, ...aws } = config.aws;
    settings.push({ type: 'AWS', provider: createProvider({ type: 'AWS', ...aws }), catalogue: { kind: 'configured', images: catalogue }, builderInstanceType, simulateBuilds: false });
  }
  if (config.azure) {
    const { catalogue, builderInstanceType, ...azure } = config.azure;
    settings.push({ type: 'AZURE', provider: createProvider({ type: 'AZURE', ...azure }), catalogue: { kind: 'configured', images: catalogue }, builderInstanceType, simulateBuilds: false });
  }
  return new Clouds(settings);
}
