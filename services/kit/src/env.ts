import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Configuration that cannot start a process: every problem found, one per line. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * The development default of the secret shared by the gateway and the services to sign
 * the internal identity header, and of the JWT secret. Production sets both.
 */
export const DEV_INTERNAL_SECRET = 'fleetgraph-dev-internal-secret-change-me';
export const DEV_JWT_SECRET = 'fleetgraph-dev-jwt-secret-change-me';

/** Settings every service reads; each service extends this shape with its own. */
export const serviceEnvShape = {
  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  /** The process's NATS credentials file (user JWT and seed), as text. */
  NATS_CREDENTIALS: z.string().optional(),
  /** The same, from a file (a mounted Secret). */
  NATS_CREDENTIALS_FILE: z.string().optional(),
  /** When set, the store is MongoDB; otherwise SQLite files under DATA_DIR. */
  MONGODB_URI: z.string().url().optional(),
  DATA_DIR: z.string().default('./.data'),
  PORT: z.coerce.number().int().min(0).max(65535),
  HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  INTERNAL_AUTH_SECRET: z.string().min(16).default(DEV_INTERNAL_SECRET),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
};

/**
 * Parses the environment against a zod object schema. Empty strings count as unset, so that
 * `FOO= cmd` falls back to the default. Fails with every problem at once, not the first.
 */
export function parseEnv<S extends z.ZodRawShape>(shape: S, env: NodeJS.ProcessEnv = process.env): z.infer<z.ZodObject<S>> {
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const result = z.object(shape).safeParse(input);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  return result.data;
}

/** The process's NATS credentials: NATS_CREDENTIALS, or the file NATS_CREDENTIALS_FILE names; undefined without either. */
export function natsCredentials(env: { NATS_CREDENTIALS?: string; NATS_CREDENTIALS_FILE?: string }): string | undefined {
  if (env.NATS_CREDENTIALS) return env.NATS_CREDENTIALS;
  if (env.NATS_CREDENTIALS_FILE) return readFileSync(env.NATS_CREDENTIALS_FILE, 'utf8');
  return undefined;
}
