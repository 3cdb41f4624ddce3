import { CloudError, messageOf } from '../errors.js';
import type { CloudProvider, Quota } from '../provider.js';
import { createAwsProvider } from '../aws/aws-provider.js';

/** Where the local cloud listens by default (its `PORT` default). */
export const DEFAULT_LOCAL_CLOUD_ENDPOINT = 'http://127.0.0.1:4566';

/**
 * The local cloud takes any signed request; these fixed keys only make the AWS SDK sign.
 * They are not secrets.
 */
export const LOCAL_CLOUD_CREDENTIALS = {
  accessKeyId: 'LOCALCLOUDACCESSKEY',
  secretAccessKey: 'local-cloud-not-a-secret',
} as const;

/** The owner alias of the local cloud's out-of-the-box images, as `amazon` is of Amazon's. */
export const LOCAL_IMAGE_PUBLISHER = 'fleetgraph';

export interface LocalProviderOptions {
  /** @default 'http://127.0.0.1:4566' */
  endpoint?: string;
  /** The region used for account-wide calls. @default 'local-1' */
  region?: string;
  /** Attempts per call. @default 5 */
  maxAttempts?: number;
  /** @default 'adaptive' */
  retryMode?: 'standard' | 'adaptive';
  /** @default 30_000 */
  requestTimeoutMs?: number;
  /** How long describes of many clusters wait to be made as one call (ms); 0 makes each alone. @default 5 */
  batchWindowMs?: number;
}

/**
 * The provider of the local cloud. The local cloud speaks EC2's Query API, so this is the AWS
 * adapter pointed at it: every end-to-end run on one machine drives the same code as AWS does.
 * What EC2 cannot say (the vCPU quota, which AWS reports through Service Quotas) comes from
 * the local cloud's own `GET /_admin/quota`.
 */
export function createLocalProvider(options: LocalProviderOptions = {}): CloudProvider {
  const endpoint = (options.endpoint ?? DEFAULT_LOCAL_CLOUD_ENDPOINT).replace(/\/+$/, '');
  return createAwsProvider({
    cloud: 'LOCAL',
    region: options.region ?? 'local-1',
    endpoint,
    credentials: { ...LOCAL_CLOUD_CREDENTIALS },
    imageOwners: ['self', LOCAL_IMAGE_PUBLISHER],
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
    ...(options.retryMode ? { retryMode: options.retryMode } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    ...(options.batchWindowMs !== undefined ? { batchWindowMs: options.batchWindowMs } : {}),
    quotaSource: (region) => localQuota(endpoint, region),
  });
}

async function localQuota(endpoint: string, region: string): Promise<Quota | null> {
  let response: Response;
  try {
    response = await fetch(`${endpoint}/_admin/quota?region=${encodeURIComponent(region)}`);
  } catch (error) {
    throw new CloudError(
      { code: 'TRANSIENT', message: messageOf(error), cloud: 'LOCAL', operation: 'quota' },
      { cause: error },
    );
  }
  if (response.status === 404) return null;
  if (!response.ok) {
    throw new CloudError({
      code: response.status >= 500 ? 'TRANSIENT' : 'INVALID_CONFIGURATION',
      message: await response.text(),
      cloud: 'LOCAL',
      operation: 'quota',
      httpStatus: response.status,
    });
  }
  const body = (await response.json()) as { region: string; vcpuLimit: number; vcpuUsed: number };
  return { region: body.region, vcpuLimit: body.vcpuLimit, vcpuUsed: body.vcpuUsed };
}
