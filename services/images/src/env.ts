import { DEFAULT_LOCAL_CLOUD_ENDPOINT } from '@fleetgraph/clouds';
import { parseEnv, serviceEnvShape } from '@fleetgraph/kit';
import { z } from 'zod';
import type { CloudsConfig } from './adapters/clouds.js';
import type { WorkerOptions } from './app/image-worker.js';
import { CATALOGUE } from './domain/catalogue.js';

const keys = new Set(CATALOGUE.map((e) => e.key));

/** A cloud's catalogue: `{ "<os>-<version>-k8s-<minor>": { "<region>": "<image id>" } }`, as JSON text. */
const catalogueJson = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not JSON' });
      return z.NEVER;
    }
  })
  .pipe(
    z.record(
      z.string().refine((k) => keys.has(k), { message: `keys are catalogue entries: ${[...keys].join(', ')}` }),
      z.record(z.string().min(1), z.string().min(1)),
    ),
  );

const ms = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

/** The images service's environment; see the README for each variable. */
export const envShape = {
  ...serviceEnvShape,
  PORT: z.coerce.number().int().min(0).max(65535).default(4003),

  /** The local cloud's EC2 endpoint; LOCAL is always configured. */
  LOCAL_CLOUD_URL: z.string().url().default(DEFAULT_LOCAL_CLOUD_ENDPOINT),
  /** The local cloud's speed factor: simulated builds are this much faster too. */
  LOCAL_CLOUD_SPEED: z.coerce.number().positive().default(1),
  /** Where the local cloud publishes the out-of-the-box images. */
  IMAGES_LOCAL_SOURCE_REGION: z.string().min(1).default('local-1'),
  IMAGES_LOCAL_BUILDER_INSTANCE_TYPE: z.string().min(1).default('t3.medium'),

  /** Setting it configures AWS: the region for account-wide calls. */
  AWS_REGION: z.string().min(1).optional(),
  /** Static keys; without them, the AWS SDK's default chain (environment, profile, instance role). */
  AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
  AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  AWS_SESSION_TOKEN: z.string().min(1).optional(),
  /** An EC2-compatible endpoint instead of AWS's own (a fake, a proxy). */
  AWS_EC2_ENDPOINT: z.string().url().optional(),
  IMAGES_AWS_CATALOGUE: catalogueJson.default({}),
  IMAGES_AWS_BUILDER_INSTANCE_TYPE: z.string().min(1).default('t3.medium'),

  /** Setting both configures Azure. */
  AZURE_SUBSCRIPTION_ID: z.string().min(1).optional(),
  AZURE_RESOURCE_GROUP: z.string().min(1).optional(),
  /** The location for subscription-wide calls. */
  AZURE_LOCATION: z.string().min(1).default('eastus'),
  /** A service principal; without it, DefaultAzureCredential (managed identity, Azure CLI, ...). */
  AZURE_TENANT_ID: z.string().min(1).optional(),
  AZURE_CLIENT_ID: z.string().min(1).optional(),
  AZURE_CLIENT_SECRET: z.string().min(1).optional(),
  IMAGES_AZURE_CATALOGUE: catalogueJson.default({}),
  IMAGES_AZURE_BUILDER_VM_SIZE: z.string().min(1).default('Standard_D2s_v5'),

  IMAGES_LEASE_MS: ms(30_000),
  IMAGES_POLL_MS: ms(2_000),
  IMAGES_SWEEP_MS: ms(5_000),
  IMAGES_MAX_JOBS: z.coerce.number().int().min(1).default(8),
  IMAGES_COPY_TIMEOUT_MS: ms(2 * 3600_000),
  IMAGES_BUILD_TIMEOUT_MS: ms(2 * 3600_000),
  /** One simulated Ansible task on the local cloud at speed 1 (divided by LOCAL_CLOUD_SPEED). */
  IMAGES_SIMULATED_TASK_MS: ms(20_000),
};

export const readEnv = (env: NodeJS.ProcessEnv = process.env) => parseEnv(envShape, env);
export type Env = ReturnType<typeof readEnv>;

/** The clouds an environment configures. */
export function cloudsConfig(env: Env): CloudsConfig {
  const awsKeys =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        }
      : undefined;
  const azureKeys =
    env.AZURE_TENANT_ID && env.AZURE_CLIENT_ID && env.AZURE_CLIENT_SECRET
      ? { tenantId: env.AZURE_TENANT_ID, clientId: env.AZURE_CLIENT_ID, clientSecret: env.AZURE_CLIENT_SECRET }
      : undefined;
  return {
    local: {
      url: env.LOCAL_CLOUD_URL,
      sourceRegion: env.IMAGES_LOCAL_SOURCE_REGION,
      builderInstanceType: env.IMAGES_LOCAL_BUILDER_INSTANCE_TYPE,
    },
    aws: env.AWS_REGION
      ? {
          region: env.AWS_REGION,
          ...(awsKeys ? { credentials: awsKeys } : {}),
          ...(env.AWS_EC2_ENDPOINT ? { endpoint: env.AWS_EC2_ENDPOINT } : {}),
          catalogue: env.IMAGES_AWS_CATALOGUE,
          builderInstanceType: env.IMAGES_AWS_BUILDER_INSTANCE_TYPE,
        }
      : null,
    azure:
      env.AZURE_SUBSCRIPTION_ID && env.AZURE_RESOURCE_GROUP
        ? {
            region: env.AZURE_LOCATION,
            subscriptionId: env.AZURE_SUBSCRIPTION_ID,
            resourceGroup: env.AZURE_RESOURCE_GROUP,
            ...(azureKeys ? { credentials: azureKeys } : {}),
            catalogue: env.IMAGES_AZURE_CATALOGUE,
            builderInstanceType: env.IMAGES_AZURE_BUILDER_VM_SIZE,
          }
        : null,
  };
}

/** The worker's timing from an environment. */
export function workerOptions(env: Env): Partial<WorkerOptions> {
  return {
    leaseMs: env.IMAGES_LEASE_MS,
    pollMs: env.IMAGES_POLL_MS,
    sweepMs: env.IMAGES_SWEEP_MS,
    maxJobs: env.IMAGES_MAX_JOBS,
    copyTimeoutMs: env.IMAGES_COPY_TIMEOUT_MS,
    buildTimeoutMs: env.IMAGES_BUILD_TIMEOUT_MS,
    simulatedTaskMs: Math.max(1, Math.round(env.IMAGES_SIMULATED_TASK_MS / env.LOCAL_CLOUD_SPEED)),
  };
}
