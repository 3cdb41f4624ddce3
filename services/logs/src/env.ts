import { parseEnv, publicUrlSetting, secretSetting, serviceEnvShape } from '@fleetgraph/kit';
import { z } from 'zod';
import { DEFAULT_COLLECTION_SETTINGS, type CollectionSettings } from './app/collections.js';

/** The development default of the secret that signs download links; production sets LOGS_DOWNLOAD_SECRET. */
export const DEV_DOWNLOAD_SECRET = 'fleetgraph-dev-log-download-secret-change-me';

const int = (min: number, fallback: number) => z.coerce.number().int().min(min).default(fallback);

/** The logs service's environment; see the README for each variable. */
export const readEnv = (env: NodeJS.ProcessEnv = process.env) =>
  parseEnv(
    {
      ...serviceEnvShape,
      PORT: z.coerce.number().int().min(0).max(65535).default(4005),
      /**
       * The gateway's public GraphQL URL; download links are its siblings
       * (`<PUBLIC_URL less /graphql>/logs/download/...`).
       */
      PUBLIC_URL: publicUrlSetting(),
      LOGS_DOWNLOAD_SECRET: secretSetting(DEV_DOWNLOAD_SECRET, 32),
      LOGS_DOWNLOAD_TTL_SECONDS: int(10, 900),
      LOGS_RETENTION_HOURS: z.coerce.number().positive().default(72),
      LOGS_MAX_CONCURRENT: int(1, 4),
      LOGS_MAX_CONCURRENT_PER_CLUSTER: int(1, 1),
      LOGS_MAX_QUEUED: int(1, 100),
      LOGS_MAX_ARCHIVE_MB: z.coerce.number().positive().default(512),
      LOGS_TAIL_LINES: z.coerce.number().int().min(1).max(10_000).default(10_000),
      LOGS_AGENT_TIMEOUT_MS: int(100, 10_000),
      LOGS_IDLE_TIMEOUT_MS: int(100, 30_000),
      LOGS_DEADLINE_MS: int(1000, 15 * 60_000),
      LOGS_WINDOW: z.coerce.number().int().min(1).max(256).default(16),
      LOGS_CHUNK_BYTES: z.coerce
        .number()
        .int()
        .min(1024)
        .max(256 * 1024)
        .default(64 * 1024),
      LOGS_LEASE_MS: int(100, 30_000),
      LOGS_SWEEP_MS: int(100, 60_000),
    },
    env,
  );
export type Env = ReturnType<typeof readEnv>;

/** The collection settings the environment gives. */
export function collectionSettings(env: Env): CollectionSettings {
  return {
    maxConcurrent: env.LOGS_MAX_CONCURRENT,
    maxConcurrentPerCluster: env.LOGS_MAX_CONCURRENT_PER_CLUSTER,
    maxQueued: env.LOGS_MAX_QUEUED,
    slotRetryMs: DEFAULT_COLLECTION_SETTINGS.slotRetryMs,
    maxArchiveBytes: Math.floor(env.LOGS_MAX_ARCHIVE_MB * 1024 * 1024),
    retentionMs: Math.floor(env.LOGS_RETENTION_HOURS * 3600_000),
    tailLines: env.LOGS_TAIL_LINES,
    namespaceWindowMs: 3600_000,
    agentTimeoutMs: env.LOGS_AGENT_TIMEOUT_MS,
    idleTimeoutMs: env.LOGS_IDLE_TIMEOUT_MS,
    deadlineMs: env.LOGS_DEADLINE_MS,
    window: env.LOGS_WINDOW,
    chunkBytes: env.LOGS_CHUNK_BYTES,
    leaseMs: env.LOGS_LEASE_MS,
    sweepMs: env.LOGS_SWEEP_MS,
  };
}
