import { CloudError, createProvider, type CloudProvider, type CloudType, type InstanceType, type Region } from '@fleetgraph/clouds';

export interface ProviderSettings {
  /** The local cloud's endpoint. */
  localCloudUrl: string;
  /** Azure subscription and resource group; Azure is unavailable without them. */
  azure?: { subscriptionId?: string; resourceGroup?: string };
}

const OFFER_TTL_MS = 5 * 60_000;

/**
 * One provider per (cloud, region), created on first use; and what each cloud offers (regions,
 * instance types), cached for a few minutes since it changes rarely and validation asks often.
 */
export class ProviderRegistry {
  private readonly providers = new Map<string, CloudProvider>();
  private readonly offers = new Map<string, { at: number; value: Promise<unknown> }>();

  constructor(private readonly settings: ProviderSettings) {}

  get(type: CloudType, region: string): CloudProvider {
    const key = `${type}/${region}`;
    let provider = this.providers.get(key);
    if (!provider) {
      provider = this.create(type, region);
      this.providers.set(key, provider);
    }
    return provider;
  }

  private create(type: CloudType, region: string): CloudProvider {
    switch (type) {
      case 'LOCAL':
        return createProvider({ type, region, endpoint: this.settings.localCloudUrl });
      case 'AWS':
        return createProvider({ type, region });
      case 'AZURE': {
        const { subscriptionId, resourceGroup } = this.settings.azure ?? {};
        if (!subscriptionId || !resourceGroup) {
          throw new CloudError({ code: 'INVALID_CONFIGURATION', cloud: 'AZURE', message: 'Azure is not configured: set AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP' });
        }
        return createProvider({ type, region, subscriptionId, resourceGroup });
      }
    }
  }

  private cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.offers.get(key);
    if (hit && Date.now() - hit.at < OFFER_TTL_MS) return hit.value as Promise<T>;
    const value = load();
    this.offers.set(key, { at: Date.now(), value });
    value.catch(() => this.offers.delete(key));
    return value;
  }

  /** The cloud's regions (asked of its default region). */
  regions(type: CloudType): Promise<Region[]> {
    return this.cached(`regions/${type}`, () => this.get(type, defaultRegion[type]).regions());
  }

  instanceTypes(type: CloudType, region: string): Promise<InstanceType[]> {
    return this.cached(`types/${type}/${region}`, () => this.get(type, region).instanceTypes(region));
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.providers.values()].map((p) => p.close()));
  }
}

const defaultRegion: Record<CloudType, string> = { LOCAL: 'local-1', AWS: 'us-east-1', AZURE: 'eastus' };
