import { CloudRegistry, type RegistryCloudConfig } from '@fleetgraph/clouds';

export interface ProviderSettings {
  /** The local cloud's endpoint. */
  localCloudUrl: string;
  /** Azure subscription and resource group; Azure is unavailable without them. */
  azure?: { subscriptionId?: string; resourceGroup?: string };
  /**
   * How long the AWS adapter (local cloud included) lets describes of many clusters' machines and
   * VPCs wait for each other, to make them as one EC2 call (ms); 0 makes each alone. @default 5
   */
  batchWindowMs?: number;
}

/**
 * The clouds the clusters service provisions on, as @fleetgraph/clouds' {@link CloudRegistry}:
 * one provider per (cloud, region), created on first use, and what each cloud offers (regions,
 * instance types) cached for a few minutes. The local cloud and AWS (the SDK's default
 * credential chain) are always there; Azure once its subscription and resource group are set.
 */
export class ProviderRegistry extends CloudRegistry {
  constructor(settings: ProviderSettings) {
    const { subscriptionId, resourceGroup } = settings.azure ?? {};
    const batch = settings.batchWindowMs === undefined ? {} : { batchWindowMs: settings.batchWindowMs };
    const clouds: RegistryCloudConfig[] = [
      { type: 'LOCAL', endpoint: settings.localCloudUrl, ...batch },
      { type: 'AWS', ...batch },
    ];
    if (subscriptionId && resourceGroup) clouds.push({ type: 'AZURE', subscriptionId, resourceGroup });
    super({
      clouds,
      notConfigured: { AZURE: 'Azure is not configured: set AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP' },
    });
  }
}
