import type { HttpClient } from '@azure/core-rest-pipeline';
import type { TokenCredential } from '@azure/identity';
import { z } from 'zod';
import { createAwsProvider, type AwsCredentials } from './aws/aws-provider.js';
import { createAzureProvider } from './azure/azure-provider.js';
import { CloudError } from './errors.js';
import { createLocalProvider, DEFAULT_LOCAL_CLOUD_ENDPOINT } from './local/local-provider.js';
import type { CloudProvider } from './provider.js';
import { meterProvider } from './metrics.js';
import { traceProvider } from './tracing.js';

const retryMode = z.enum(['standard', 'adaptive']);

const awsConfigSchema = z.object({
  type: z.literal('AWS'),
  region: z.string().min(1),
  /** Static keys; without them, the SDK's default chain (environment, profile, instance role). */
  credentials: z
    .object({
      accessKeyId: z.string().min(1),
      secretAccessKey: z.string().min(1),
      sessionToken: z.string().min(1).optional(),
    })
    .optional(),
  endpoint: z.string().url().optional(),
  maxAttempts: z.number().int().min(1).max(20).optional(),
  retryMode: retryMode.optional(),
  imageOwners: z.array(z.string().min(1)).min(1).optional(),
  /** How long describes of many clusters wait to be made as one call (ms); 0 makes each alone. @default 5 */
  batchWindowMs: z.number().int().min(0).max(1000).optional(),
});

const azureConfigSchema = z.object({
  type: z.literal('AZURE'),
  region: z.string().min(1),
  subscriptionId: z.string().min(1),
  resourceGroup: z.string().min(1),
  galleryPrefix: z.string().min(1).optional(),
  /** A service principal; without it, DefaultAzureCredential. */
  credentials: z
    .object({ tenantId: z.string().min(1), clientId: z.string().min(1), clientSecret: z.string().min(1) })
    .optional(),
  endpoint: z.string().url().optional(),
  pollIntervalMs: z.number().int().min(1).optional(),
  maxRetries: z.number().int().min(0).max(20).optional(),
  adminUsername: z.string().min(1).optional(),
  sshPublicKey: z.string().min(1).optional(),
});

const localConfigSchema = z.object({
  type: z.literal('LOCAL'),
  region: z.string().min(1).default('local-1'),
  endpoint: z.string().url().default(DEFAULT_LOCAL_CLOUD_ENDPOINT),
  maxAttempts: z.number().int().min(1).max(20).optional(),
  retryMode: retryMode.optional(),
  batchWindowMs: z.number().int().min(0).max(1000).optional(),
});

/** A cloud configuration: which cloud, its region, and how to reach it. Validated by {@link createProvider}. */
export const cloudConfigSchema = z.discriminatedUnion('type', [awsConfigSchema, azureConfigSchema, localConfigSchema]);
export type CloudConfig = z.input<typeof cloudConfigSchema>;
export type AwsCloudConfig = z.input<typeof awsConfigSchema>;
export type AzureCloudConfig = z.input<typeof azureConfigSchema>;
export type LocalCloudConfig = z.input<typeof localConfigSchema>;

/** What a configuration cannot carry as data: credential objects and transports. */
export interface ProviderDependencies {
  aws?: { credentials?: AwsCredentials };
  azure?: { credential?: TokenCredential; httpClient?: HttpClient };
}

/**
 * The provider for a cloud configuration. Throws INVALID_CONFIGURATION, listing every problem,
 * when the configuration does not validate.
 */
export function createProvider(config: CloudConfig, dependencies: ProviderDependencies = {}): CloudProvider {
  const parsed = cloudConfigSchema.safeParse(config);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new CloudError({
      code: 'INVALID_CONFIGURATION',
      message: `invalid cloud configuration: ${problems.join('; ')}`,
      cloud: config.type ?? 'LOCAL',
    });
  }
  const c = parsed.data;
  // Every operation in a span (tracing.ts) and timed (metrics.ts).
  switch (c.type) {
    case 'AWS':
      return traceProvider(
        meterProvider(createAwsProvider({ ...c, credentials: dependencies.aws?.credentials ?? c.credentials })),
      );
    case 'AZURE':
      return traceProvider(meterProvider(createAzureProvider({ ...c, ...dependencies.azure })));
    case 'LOCAL':
      return traceProvider(meterProvider(createLocalProvider(c)));
  }
}
