import { CloudRegistry, type CloudProvider, type Region, type RegistryCloudConfig } from '@fleetgraph/clouds';
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

/**
 * The clouds the service is configured for: what the service knows of each (catalogue, builders),
 * with its provider from @fleetgraph/clouds' {@link CloudRegistry}, which also caches the
 * clouds' regions and closes the providers.
 */
export class Clouds {
  private readonly byType = new Map<CloudType, CloudSettings>();

  constructor(
    private readonly registry: CloudRegistry,
    settings: readonly Omit<CloudSettings, 'provider'>[],
  ) {
    // Each cloud's provider is its home region's (images work in any region through it).
    for (const s of settings) this.byType.set(s.type, { ...s, provider: registry.get(s.type) });
  }

  get(type: CloudType): CloudSettings | undefined {
    return this.byType.get(type);
  }

  get configured(): CloudSettings[] {
    return [...this.byType.values()];
  }

  /** The cloud's regions, asked at most once per cache period; a failure is not cached. */
  async regions(type: CloudType): Promise<Region[]> {
    if (!this.byType.has(type)) return [];
    return this.registry.regions(type);
  }

  async region(type: CloudType, name: string): Promise<Region | null> {
    return (await this.regions(type)).find((r) => r.name === name) ?? null;
  }

  async close(): Promise<void> {
    await this.registry.close();
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
  const clouds: RegistryCloudConfig[] = [];
  const settings: Omit<CloudSettings, 'provider'>[] = [];
  if (config.local) {
    clouds.push({ type: 'LOCAL', endpoint: config.local.url });
    settings.push({
      type: 'LOCAL',
      catalogue: { kind: 'discover', sourceRegion: config.local.sourceRegion },
      builderInstanceType: config.local.builderInstanceType,
      simulateBuilds: true,
    });
  }
  if (config.aws) {
    const { catalogue, builderInstanceType, ...aws } = config.aws;
    clouds.push({ type: 'AWS', ...aws });
    settings.push({
      type: 'AWS',
      catalogue: { kind: 'configured', images: catalogue },
      builderInstanceType,
      simulateBuilds: false,
    });
  }
  if (config.azure) {
    const { catalogue, builderInstanceType, ...azure } = config.azure;
    clouds.push({ type: 'AZURE', ...azure });
    settings.push({
      type: 'AZURE',
      catalogue: { kind: 'configured', images: catalogue },
      builderInstanceType,
      simulateBuilds: false,
    });
  }
  return new Clouds(new CloudRegistry({ clouds }), settings);
}
