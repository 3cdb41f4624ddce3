/**
 * The provider contract, run by the Azure adapter against a FAKE of Azure Resource Manager
 * (./arm-fake.ts): a local HTTP server answering ARM's REST API as ARM does. No request here
 * reaches Azure.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudError } from '../errors.js';
import { describeProviderContract } from '../testing/provider-contract.js';
import { ARM_THROTTLE_MESSAGE, armFakeHttpClient, armQuotaMessage, startArmFake, type ArmFake } from './arm-fake.js';
import { createAzureProvider } from './azure-provider.js';

/** A credential that hands out a fixed token: the fake checks that one is sent, not what it is. */
const fakeCredential: TokenCredential = {
  getToken: async (): Promise<AccessToken> => ({ token: 'fake-arm-token', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

const PUBLIC_URL = 'https://management.azure.fake';

async function fakeAndProvider(options: { maxRetries?: number } = {}) {
  const fake = await startArmFake({ publicUrl: PUBLIC_URL, operationDelayMs: 15 });
  const provider = createAzureProvider({
    subscriptionId: fake.subscriptionId,
    resourceGroup: fake.resourceGroup,
    region: 'eastus',
    endpoint: PUBLIC_URL,
    credential: fakeCredential,
    httpClient: armFakeHttpClient(fake.url),
    pollIntervalMs: 10,
    maxRetries: options.maxRetries ?? 0,
  });
  return { fake, provider };
}

describeProviderContract(
  'azure adapter against a fake of Azure Resource Manager (reached through the SDK httpClient)',
  async () => {
    const { fake, provider } = await fakeAndProvider();
    const imageId = fake.seedGalleryImage({
      region: 'eastus',
      gallery: 'fleetgraph_eastus',
      name: 'ubuntu-24.04-kubernetes-1.31',
    });
    return {
      provider,
      region: 'eastus',
      otherRegion: 'westeurope',
      zones: ['1', '2'],
      instanceType: 'Standard_D2s_v5',
      instanceVcpus: 2,
      imageId,
      missingMachineId: `/subscriptions/${fake.subscriptionId}/resourceGroups/${fake.resourceGroup}/providers/Microsoft.Compute/virtualMachines/fg-missing`,
      vcpuUsed: async (region) => (await provider.quota(region))!.vcpuUsed,
      setVcpuLimit: async (region, limit) => fake.setCoresLimit(region, limit),
      quotaMessage: ({ region, limit, used, requested }) => armQuotaMessage(region, limit, used, requested),
      quotaCloudCode: 'OperationNotAllowed',
      throttle: async () => fake.throttle(),
      throttleCloudCode: 'TooManyRequests',
      throttleMessage: ARM_THROTTLE_MESSAGE,
      resetFaults: async () => fake.stopThrottling(),
      close: () => fake.close(),
    };
  },
);

describe('azure adapter against a fake of Azure Resource Manager: what the contract does not cover', () => {
  let fake: ArmFake;
  let provider: ReturnType<typeof createAzureProvider>;

  beforeAll(async () => {
    ({ fake, provider } = await fakeAndProvider());
  });
  afterAll(async () => {
    await provider.close();
    await fake.close();
  });

  it('classifies an allocation failure reported by the async operation as RESOURCES_DEPLETED, verbatim (fake ARM)', async () => {
    const message =
      'Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance';
    fake.failNextVmCreate({ code: 'AllocationFailed', message });
    const error = await provider
      .createMachine({
        clientToken: 'alloc-1',
        clusterId: 'c-alloc',
        pool: 'workers',
        machineName: 'workers-alloc',
        role: 'WORKER',
        region: 'eastus',
        zone: '1',
        instanceType: 'Standard_D2s_v5',
        imageId: 'Canonical:ubuntu-24_04-lts:server:latest',
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CloudError);
    expect(error).toMatchObject({
      code: 'RESOURCES_DEPLETED',
      cloudCode: 'AllocationFailed',
      message,
      retryable: true,
    });
  });

  it('classifies an unknown VM size as INVALID_CONFIGURATION (fake ARM)', async () => {
    const error = await provider
      .createMachine({
        clientToken: 'size-1',
        clusterId: 'c-size',
        pool: 'workers',
        machineName: 'workers-size',
        role: 'WORKER',
        region: 'eastus',
        zone: '1',
        instanceType: 'Standard_Nope',
        imageId: 'Canonical:ubuntu-24_04-lts:server:latest',
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'CloudError',
      code: 'INVALID_CONFIGURATION',
      cloudCode: 'InvalidParameter',
      httpStatus: 400,
    });
  });

  it('describes a marketplace image by URN, resolving "latest" (fake ARM)', async () => {
    const image = await provider.describeImage('eastus', 'Canonical:ubuntu-24_04-lts:server:latest');
    expect(image).toMatchObject({ id: 'Canonical:ubuntu-24_04-lts:server:latest', status: 'available' });
    expect(await provider.describeImage('eastus', 'Canonical:no-such-offer:server:latest')).toBeNull();
  });

  it('reaches a fake over plain http by dropping the bearer-token policy (fake ARM without auth)', async () => {
    const open = await startArmFake({ requireAuth: false, operationDelayMs: 5 });
    const direct = createAzureProvider({
      subscriptionId: open.subscriptionId,
      resourceGroup: open.resourceGroup,
      region: 'eastus',
      endpoint: open.url,
      credential: fakeCredential,
      pollIntervalMs: 5,
    });
    try {
      const network = await direct.ensureNetwork({ clusterId: 'plain-http', region: 'eastus', zones: ['1'] });
      expect(network.controlPlane.subnets[0]!.zone).toBeNull();
      expect(await direct.quota('eastus')).toMatchObject({ vcpuLimit: 100, vcpuUsed: 0 });
    } finally {
      await direct.close();
      await open.close();
    }
  });

  it('answers UNAUTHORIZED when ARM refuses the request for want of a token (fake ARM)', async () => {
    const strict = await startArmFake({ operationDelayMs: 5 });
    const anonymous = createAzureProvider({
      subscriptionId: strict.subscriptionId,
      resourceGroup: strict.resourceGroup,
      region: 'eastus',
      endpoint: strict.url,
      credential: fakeCredential,
      maxRetries: 0,
    });
    try {
      const error = await anonymous.quota('eastus').catch((e: unknown) => e);
      expect(error).toMatchObject({
        name: 'CloudError',
        code: 'UNAUTHORIZED',
        cloudCode: 'AuthenticationFailed',
        retryable: false,
      });
    } finally {
      await anonymous.close();
      await strict.close();
    }
  });
});
