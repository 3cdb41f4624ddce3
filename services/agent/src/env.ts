import { readFileSync } from 'node:fs';
import { ConfigError, parseEnv } from '@fleetgraph/kit/core';
import { AGENT_SECRET_KEYS } from '@fleetgraph/schema';
import { z } from 'zod';
import { CredentialsError, parseCredentials } from './credentials.js';
import { DEFAULT_REPORT_INTERVAL_MS } from './reports.js';

const NATS_SCHEMES = new Set(['nats:', 'tls:', 'ws:', 'wss:']);

/**
 * The agent's environment: its Secret's keys (`AGENT_SECRET_KEYS`: NATS_URL, CLUSTER_ID,
 * TENANT_ID, NATS_CREDENTIALS, given by `envFrom` in its Deployment) and its own settings.
 */
export const agentEnvShape = {
  [AGENT_SECRET_KEYS.natsUrl]: z
    .string()
    .refine(
      (value) =>
        value.split(',').every((url) => URL.canParse(url.trim()) && NATS_SCHEMES.has(new URL(url.trim()).protocol)),
      'nats://, tls://, ws:// or wss:// URLs, separated by commas',
    ),
  [AGENT_SECRET_KEYS.clusterId]: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/, 'a cluster id: 1 to 128 letters, digits, _ or -'),
  [AGENT_SECRET_KEYS.tenantId]: z.string().min(1).max(128),
  /** The agent's NATS credentials file (user JWT and seed), as text. Unset: NATS without authentication. */
  [AGENT_SECRET_KEYS.natsCredentials]: z.string().optional(),
  /** The same, from a file (by hand, outside a cluster). */
  NATS_CREDENTIALS_FILE: z.string().optional(),
  /** What the agent observes: the Kubernetes API of its cluster, or a simulated cluster. */
  AGENT_SOURCE: z.enum(['kubernetes', 'simulated']).default('kubernetes'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How often the agent reports its heartbeat, nodes and services. */
  AGENT_REPORT_INTERVAL_MS: z.coerce.number().int().min(100).default(DEFAULT_REPORT_INTERVAL_MS),
  /**
   * In a cluster: the Secret (in the agent's namespace) that renewed credentials are written back
   * to, so that a restarted agent finds them; `none` keeps them in memory only. Outside a
   * cluster they are never written.
   */
  AGENT_CREDENTIALS_SECRET: z
    .string()
    .regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?|none)$/, 'a Secret name, or none')
    .default('fleetgraph-agent'),
};

export type AgentEnv = ReturnType<typeof loadAgentEnv>;

/**
 * Parses the agent's environment and reads its credentials; throws a ConfigError naming every
 * problem: a missing or malformed variable, credentials that are not a credentials file, whose
 * seed is not the JWT's key, or that expired already.
 */
export function loadAgentEnv(env: NodeJS.ProcessEnv = process.env, now = new Date()) {
  const parsed = parseEnv(agentEnvShape, env);
  let credentials: string | undefined;
  const problems: string[] = [];
  const from = parsed.NATS_CREDENTIALS ? AGENT_SECRET_KEYS.natsCredentials : 'NATS_CREDENTIALS_FILE';
  try {
    credentials =
      parsed.NATS_CREDENTIALS ??
      (parsed.NATS_CREDENTIALS_FILE ? readFileSync(parsed.NATS_CREDENTIALS_FILE, 'utf8') : undefined);
  } catch (error) {
    problems.push(`NATS_CREDENTIALS_FILE: ${(error as Error).message}`);
  }
  if (credentials !== undefined) {
    try {
      const { expiresAt } = parseCredentials(credentials);
      if (expiresAt && expiresAt <= now)
        problems.push(
          `${from}: the user JWT expired at ${expiresAt.toISOString()}; ask the platform for new credentials`,
        );
    } catch (error) {
      if (!(error instanceof CredentialsError)) throw error;
      problems.push(`${from}: ${error.message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    natsUrl: parsed.NATS_URL,
    clusterId: parsed.CLUSTER_ID,
    tenantId: parsed.TENANT_ID,
    credentials,
    source: parsed.AGENT_SOURCE,
    logLevel: parsed.LOG_LEVEL,
    reportIntervalMs: parsed.AGENT_REPORT_INTERVAL_MS,
    credentialsSecret: parsed.AGENT_CREDENTIALS_SECRET === 'none' ? null : parsed.AGENT_CREDENTIALS_SECRET,
  };
}
