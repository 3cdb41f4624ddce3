import { createProvider, type CloudConfig, type ProviderDependencies } from './create-provider.js';
import { CloudError } from './errors.js';
import type { CloudProvider, CloudType, InstanceType, Region } from './provider.js';

/** The region a cloud's account-wide calls (its regions) go to when its configuration names none. */
export const DEFAULT_REGIONS: Readonly<Record<CloudType, string>> = {
  LOCAL: 'local-1',
  AWS: 'us-east-1',
  AZURE: 'eastus',
};

/** How long what a cloud offers (regions, instance types) is kept by default: it changes rarely. */
export const DEFAULT_OFFER_TTL_MS = 5 * 60_000;

type WithOptionalRegion<T> = T extends unknown ? Omit<T, 'region'> & { region?: string } : never;

/**
 * A cloud a registry serves: a {@link CloudConfig} whose `region` is optional. It is the cloud's
 * home region, where account-wide calls go (default {@link DEFAULT_REGIONS}); the providers of
 * other regions are made from the same configuration with their own region.
 */
export type RegistryCloudConfig = WithOptionalRegion<CloudConfig>;

export interface CloudRegistryOptions {
  /** The clouds served, one configuration per type (a later one of a type wins). */
  clouds: readonly RegistryCloudConfig[];
  /**
   * What asking for a cloud that is not configured says (an INVALID_CONFIGURATION message), per
   * type, e.g. which settings configure it. @default '<type> is not configured'
   */
  notConfigured?: Partial<Record<CloudType, string>>;
  /** Credential objects and transports, as {@link createProvider} takes them. */
  dependencies?: ProviderDependencies;
  /** How long regions and instance types are kept. @default 5 minutes */
  offerTtlMs?: number;
}

/**
 * The providers of the clouds a service works on: one per cloud type and region, made on first
 * use and closed together; and what each cloud offers (regions, instance types), asked at most
 * once per TTL, since it changes rarely and callers (validation, image requests) ask often. A
 * failed ask is not kept.
 */
export class CloudRegistry {
  private readonly configs = new Map<CloudType, RegistryCloudConfig>();
  private readonly providers = new Map<string, CloudProvider>();
  private readonly offers = new Map<string, { at: number; value: Promise<unknown> }>();
  private readonly notConfigured: Partial<Record<CloudType, string>>;
  private readonly dependencies: ProviderDependencies;
  private readonly offerTtlMs: number;

  constructor(options: CloudRegistryOptions) {
    for (const config of options.clouds) this.configs.set(config.type, config);
    this.notConfigured = options.notConfigured ?? {};
    this.dependencies = options.dependencies ?? {};
    this.offerTtlMs = options.offerTtlMs ?? DEFAULT_OFFER_TTL_MS;
  }

  /** The configured cloud types, in the order configured. */
  get types(): CloudType[] {
    return [...this.configs.keys()];
  }

  has(type: CloudType): boolean {
    return this.configs.has(type);
  }

  /** Where a cloud's account-wide calls go: its configured region, else {@link DEFAULT_REGIONS}. */
  homeRegion(type: CloudType): string {
    return this.configs.get(type)?.region ?? DEFAULT_REGIONS[type];
  }

  /**
   * The provider of a cloud in a region (by default its home region), made on first use. Throws
   * INVALID_CONFIGURATION for a cloud that is not configured, or whose configuration is invalid.
   */
  get(type: CloudType, region: string = this.homeRegion(type)): CloudProvider {
    const key = `${type}/${region}`;
    let provider = this.providers.get(key);
    if (!provider) {
      const config = this.configs.get(type);
      if (!config) {
        throw new CloudError({
          code: 'INVALID_CONFIGURATION',
          cloud: type,
          message: this.notConfigured[type] ?? `${type} is not configured`,
        });
      }
      provider = createProvider({ ...config, region }, this.dependencies);
      this.providers.set(key, provider);
    }
    return provider;
  }

  private cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.offers.get(key);
    if (hit && Date.now() - hit.at < this.offerTtlMs) return hit.value as Promise<T>;
    const value = load();
    this.offers.set(key, { at: Date.now(), value });
    value.catch(() => this.offers.delete(key));
    return value;
  }

  /** The cloud's regions, asked of its home region. */
  regions(type: CloudType): Promise<Region[]> {
    return this.cached(`regions/${type}`, () => this.get(type).regions());
  }

  /** One of the cloud's regions by name; null when it has no such region. */
  async region(type: CloudType, name: string): Promise<Region | null> {
    return (await this.regions(type)).find((r) => r.name === name) ?? null;
  }

  /** The machine sizes the cloud offers in a region. */
  instanceTypes(type: CloudType, region: string): Promise<InstanceType[]> {
    return this.cached(`types/${type}/${region}`, () => this.get(type, region).instanceTypes(region));
  }

  /** Closes every provider made; a failure to close one does not keep the others open. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.providers.values()].map((p) => p.close()));
  }
}
