import { parseEnv, publicUrlSetting, requiredInProduction, secretSetting, serviceEnvShape } from '@fleetgraph/kit';
import { cloudTypes } from '@fleetgraph/schema';
import { z } from 'zod';
import { parseCidr } from './webhooks/address-policy.js';

/** Seals the clusters' secrets at rest in development; production sets its own (see the README). */
export const DEV_CLUSTER_SECRETS_KEY = 'fleetgraph-dev-cluster-secrets-key-change-me';

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

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
    PUBLIC_URL: publicUrlSetting(),
    REGISTRIES: list.default(['registry.k8s.io', 'ghcr.io', 'registry-1.docker.io', 'quay.io']),
    RECONCILE_POLL_MS: z.coerce.number().int().min(10).default(250),
    RECONCILE_PROGRESS_MS: z.coerce.number().int().min(1).default(1000),
    RECONCILE_RESYNC_MS: z.coerce.number().int().min(100).default(30_000),
    RECONCILE_BACKOFF_BASE_MS: z.coerce.number().int().min(1).default(1000),
    RECONCILE_BACKOFF_CAP_MS: z.coerce.number().int().min(1).default(60_000),
    RECONCILE_LEASE_MS: z.coerce.number().int().min(100).default(60_000),
    RECONCILE_CONCURRENCY: z.coerce.number().int().min(1).default(16),
    /** Seals each cluster's CA keys and bootstrap tokens at rest (at least 32 characters). */
    CLUSTER_SECRETS_KEY: secretSetting(DEV_CLUSTER_SECRETS_KEY, 32),
    /**
     * The platform NATS account's seed: mints each cluster's agent credentials. Unset: agents get
     * none (NATS without authentication).
     */
    NATS_ACCOUNT_SEED: requiredInProduction(
      z
        .string()
        .regex(/^SA[A-Z2-7]{56}$/, 'an account seed (SA...)')
        .optional(),
      "it mints each cluster agent's NATS credentials",
    ),
    /** Where agents in clusters reach NATS. @default NATS_URL */
    AGENT_NATS_URL: requiredInProduction(
      z.string().optional(),
      'the NATS address agents in clusters reach, e.g. tls://nats.example.com:4222',
    ),
    AGENT_IMAGE: z.string().default('fleetgraph/agent:0.1.0'),
    /** Seconds an agent's first credentials hold (the first node must boot within them). */
    AGENT_BOOT_CREDENTIALS_TTL: z.coerce
      .number()
      .int()
      .min(60)
      .default(24 * 3600),
    /** Seconds the credentials an agent renews hold. */
    AGENT_CREDENTIALS_TTL: z.coerce.number().int().min(30).default(3600),
    /**
     * Private, loopback or link-local ranges webhooks may still be delivered to, by CIDR
     * (`127.0.0.0/8,::1/128`). @default none
     */
    WEBHOOK_ALLOWED_CIDRS: list
      .pipe(
        z.array(
          z.string().refine(
            (text) => {
              try {
                return Boolean(parseCidr(text));
              } catch {
                return false;
              }
            },
            { message: 'a CIDR range, e.g. 127.0.0.0/8 or fd00::/8' },
          ),
        ),
      )
      .default([]),
    /** How long one webhook delivery attempt may take. */
    WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
    /** The first retry's delay after a failed delivery; each further one doubles it, up to the cap. */
    WEBHOOK_BACKOFF_BASE_MS: z.coerce.number().int().min(1).default(5_000),
    WEBHOOK_BACKOFF_CAP_MS: z.coerce.number().int().min(1).default(3_600_000),
    /** A delivery failing this long fails for good; a webhook whose deliveries all fail this long is disabled. */
    WEBHOOK_DISABLE_AFTER_MS: z.coerce
      .number()
      .int()
      .min(1)
      .default(24 * 3_600_000),
    /** How long a delivery waits after its event, so that a slightly later-read earlier event of its cluster goes first. */
    WEBHOOK_ORDER_WINDOW_MS: z.coerce.number().int().min(0).default(1_000),
    WEBHOOK_POLL_MS: z.coerce.number().int().min(10).default(500),
    WEBHOOK_LEASE_MS: z.coerce.number().int().min(1_000).default(60_000),
    WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).default(16),
    /** Seconds a bootstrap token (nodes join with it) holds. */
    BOOTSTRAP_TOKEN_TTL: z.coerce
      .number()
      .int()
      .min(600)
      .default(24 * 3600),
  });
export type Env = ReturnType<typeof readEnv>;
