import { parseEnv } from '@fleetgraph/kit/core';
import { z } from 'zod';

/** The local cloud's environment, with development defaults. */
export const envShape = {
  PORT: z.coerce.number().int().min(0).max(65535).default(4566),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('./.data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Divides every duration: 1 is real time, 1000 near instant. */
  LOCAL_CLOUD_SPEED: z.coerce.number().positive().default(1),
  /** vCPU quota per region, counting pending and running machines. */
  LOCAL_CLOUD_VCPU_LIMIT: z.coerce.number().int().min(0).default(64),
  /** Share of EC2 requests refused with 503 Unavailable (0..1). */
  LOCAL_CLOUD_FAULT_RATE: z.coerce.number().min(0).max(1).default(0),
  /** EC2 requests per second above which RequestLimitExceeded is answered; 0 is no limit. */
  LOCAL_CLOUD_THROTTLE_RPS: z.coerce.number().int().min(0).default(0),
  /**
   * Whether a cluster's machine without user data fails its boot (stopped, `bootstrap failed: no
   * user data`), as one whose user data would not make it a node always does, and as a real
   * cloud's machine would. false keeps such machines booting, their cluster's agent started from
   * their tags on NATS_URL (for clusters written by hand against the EC2 API).
   */
  LOCAL_CLOUD_REQUIRE_USER_DATA: z
    .enum(['true', 'false', '1', '0'])
    .default('true')
    .transform((value) => value === 'true' || value === '1'),
  /**
   * The platform's NATS, for agents started from tags alone (machines without user data, while
   * LOCAL_CLOUD_REQUIRE_USER_DATA is false). Agents started from user data connect where their
   * Secret says, as their own users, and need nothing of the local cloud.
   */
  NATS_URL: z.string().optional(),
  /** Credentials of that NATS connection (text, or a file), when NATS authenticates. */
  NATS_CREDENTIALS: z.string().optional(),
  NATS_CREDENTIALS_FILE: z.string().optional(),
};

export type LocalCloudEnv = ReturnType<typeof loadEnv>;

/** Parses the environment; throws a ConfigError naming every problem. */
export function loadEnv(env: NodeJS.ProcessEnv = process.env) {
  return parseEnv(envShape, env);
}
