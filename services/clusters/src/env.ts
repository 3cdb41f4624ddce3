import { parseEnv, serviceEnvShape } from '@fleetgraph/kit';
import { cloudTypes } from '@fleetgraph/schema';
import { z } from 'zod';

const list = z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

/** The clusters service's environment; see the README for each variable. */
export const readEnv = () =>
  parseEnv({
    ...serviceEnvShape,
    PORT: z.coerce.number().int().min(0).max(65535).default(4002),
    LOCAL_CLOUD_URL: z.string().url().default('http://127.0.0.1:4566'),
    AZURE_SUBSCRIPTION_ID: z.string().optional(),
    AZURE_RESOURCE_GROUP: z.string().optional(),
    CLOUDS: list.pipe(z.array(z.enum(cloudTypes))).default(['LOCAL', 'AWS', 'AZURE']),
    AWS_REGIONS: list.default(['us-east-1']),
    PUBLIC_URL: z.string().url().default('http://localhost:4000/graphql'),
    REGISTRIES: list.default(['registry.k8s.io', 'ghcr.io', 'registry-1.docker.io', 'quay.io']),
    RECONCILE_POLL_MS: z.coerce.number().int().min(10).default(250),
    RECONCILE_PROGRESS_MS: z.coerce.number().int().min(1).default(1000),
    RECONCILE_RESYNC_MS: z.coerce.number().int().min(100).default(30_000),
    RECONCILE_BACKOFF_BASE_MS: z.coerce.number().int().min(1).default(1000),
    RECONCILE_BACKOFF_CAP_MS: z.coerce.number().int().min(1).default(60_000),
    RECONCILE_LEASE_MS: z.coerce.number().int().min(100).default(60_000),
    RECONCILE_CONCURRENCY: z.coerce.number().int().min(1).default(16),
  });
export type Env = ReturnType<typeof readEnv>;
