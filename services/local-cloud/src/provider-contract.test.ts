/**
 * The provider contract (from @fleetgraph/clouds) run over the local cloud, started in-process
 * on a free port. The local cloud is a FAKE cloud: a simulation that speaks EC2's Query API.
 * Two adapters drive it: `local` (createLocalProvider), and `aws` (createAwsProvider pointed at
 * it as at an EC2 endpoint), which is the same code that drives real EC2.
 */
import {
  createAwsProvider,
  createLocalProvider,
  LOCAL_CLOUD_CREDENTIALS,
  type CloudProvider,
} from '@fleetgraph/clouds';
import { describeProviderContract, type ProviderHarness } from '@fleetgraph/clouds/testing';
import { createSqliteStore } from '@fleetgraph/kit/store';
import { startLocalCloud } from './local-cloud.js';
import { FIRST_SEED_IMAGE, localCloudAdmin } from './testing.js';

const vcpuMessage = (limit: number) =>
  `You have requested more vCPU capacity than your current vCPU limit of ${limit} allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.`;

async function localCloudHarness(adapter: (endpoint: string) => CloudProvider): Promise<ProviderHarness> {
  const store = createSqliteStore({ file: ':memory:' });
  // 1000x: a 60 s boot takes 60 ms, a 5 min image copy 300 ms.
  const cloud = await startLocalCloud({ store, speed: 1000 });
  const admin = localCloudAdmin(cloud.url);
  return {
    provider: adapter(cloud.url),
    region: 'local-1',
    otherRegion: 'local-2',
    zones: ['local-1a', 'local-1b'],
    instanceType: 't3.medium',
    instanceVcpus: 2,
    imageId: FIRST_SEED_IMAGE.id,
    missingMachineId: 'i-0123456789abcdef0',
    vcpuUsed: async (region) => (await admin.quota(region)).vcpuUsed,
    setVcpuLimit: async (region, limit) => {
      await admin.setQuota(limit, region);
    },
    quotaMessage: ({ limit }) => vcpuMessage(limit),
    quotaCloudCode: 'VcpuLimitExceeded',
    throttle: async () => {
      await admin.setFaults({ throttlePerSecond: 1 });
    },
    throttleCloudCode: 'RequestLimitExceeded',
    throttleMessage: 'Request limit exceeded.',
    resetFaults: async () => {
      await admin.resetFaults();
    },
    close: async () => {
      await cloud.close();
      await store.close();
    },
  };
}

// One attempt per call: retries would hide the throttling the contract checks.
describeProviderContract('local adapter against the local cloud (a fake cloud, in-process)', () =>
  localCloudHarness((endpoint) => createLocalProvider({ endpoint, maxAttempts: 1 })),
);

describeProviderContract('aws adapter against the local cloud as a fake EC2 endpoint', () =>
  localCloudHarness((endpoint) =>
    createAwsProvider({
      region: 'local-1',
      endpoint,
      credentials: { ...LOCAL_CLOUD_CREDENTIALS },
      maxAttempts: 1,
      retryMode: 'standard',
    }),
  ),
);
