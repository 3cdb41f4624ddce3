import {
  ConfigError,
  DEFAULT_CLAIM_MAPPING,
  DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
  DEV_JWT_SECRET,
  optionalSecretSetting,
  parseDurationSeconds,
  parseEnv,
  publicUrlSetting,
  serviceEnvShape,
  type OidcOptions,
} from '@fleetgraph/kit/core';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseOrigins } from './cors.js';
import type { DashboardOptions } from './dashboard.js';

const defaultSupergraph = fileURLToPath(new URL('../../schema/supergraph.graphql', import.meta.url));
const defaultManifest = fileURLToPath(new URL('../../client/persisted-query-manifest.json', import.meta.url));
const defaultDashboard = fileURLToPath(new URL('../../services/dashboard/dist', import.meta.url));

/** A duration setting: seconds, or a number with s, m, h or d (`90m`, `24h`), parsed to seconds. */
const durationSetting = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      const seconds = parseDurationSeconds(value);
      if (seconds === undefined)
        ctx.addIssue({
          code: 'custom',
          message: 'a positive duration: seconds, or a number with s, m, h or d (e.g. 24h)',
        });
      return seconds ?? 0;
    });

/**
 * The sign-in settings that only make sense together: the identity provider needs its issuer and
 * audience (else any token it issues, for any application, would do), and production fetches its
 * keys over HTTPS only. @throws ConfigError naming every problem
 */
function checkSignIn<
  T extends { AUTH_JWKS_URL?: string; AUTH_ISSUER?: string; AUTH_AUDIENCE?: string; NODE_ENV: string },
>(env: T): T {
  const problems: string[] = [];
  if (env.AUTH_JWKS_URL) {
    if (!env.AUTH_ISSUER)
      problems.push("AUTH_ISSUER: required with AUTH_JWKS_URL (the iss of the identity provider's tokens)");
    if (!env.AUTH_AUDIENCE)
      problems.push(
        'AUTH_AUDIENCE: required with AUTH_JWKS_URL (the aud the identity provider gives tokens for this API)',
      );
    if (env.NODE_ENV === 'production' && new URL(env.AUTH_JWKS_URL).protocol !== 'https:')
      problems.push('AUTH_JWKS_URL: must be https:// in production');
  } else {
    for (const name of ['AUTH_ISSUER', 'AUTH_AUDIENCE'] as const)
      if (env[name]) problems.push(`${name}: has no effect without AUTH_JWKS_URL`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return env;
}

/** The gateway's environment; see the README for each variable. */
export const readEnv = (env: NodeJS.ProcessEnv = process.env) =>
  checkSignIn(
    parseEnv(
      {
        ...serviceEnvShape,
        PORT: z.coerce.number().int().min(0).max(65535).default(4000),
        /**
         * A port of its own for /metrics (on HOST), which PORT then does not serve: operation names
         * and counts are not the public's. Unset: /metrics on PORT.
         */
        METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
        /**
         * HS256 secret of development tokens; production may leave it unset (HS256 tokens refused)
         * once AUTH_JWKS_URL is set.
         */
        AUTH_JWT_SECRET: optionalSecretSetting(DEV_JWT_SECRET, 'AUTH_JWKS_URL'),
        /** The organisation's identity provider: where it publishes its signing keys (a JSON Web Key Set). */
        AUTH_JWKS_URL: z.string().url().optional(),
        /** The `iss` of the identity provider's tokens, exactly. */
        AUTH_ISSUER: z.string().min(1).optional(),
        /** The `aud` its tokens must carry for this API: one value, or several separated by commas. */
        AUTH_AUDIENCE: z.string().min(1).optional(),
        /** Claim of the identity provider's tokens holding the user id. */
        AUTH_CLAIM_SUBJECT: z.string().min(1).default(DEFAULT_CLAIM_MAPPING.subject),
        /** Claim holding the tenant id. */
        AUTH_CLAIM_TENANT: z.string().min(1).default(DEFAULT_CLAIM_MAPPING.tenant),
        /** Claim holding the tenant-admin flag. */
        AUTH_CLAIM_TENANT_ADMIN: z.string().min(1).default(DEFAULT_CLAIM_MAPPING.tenantAdmin),
        /** Claim holding the project roles (an object, or a list of "<project>:<role>"). */
        AUTH_CLAIM_PROJECTS: z.string().min(1).default(DEFAULT_CLAIM_MAPPING.projects),
        /** After a fetch of the provider's keys, how long an unknown kid is refused without fetching again. */
        AUTH_JWKS_COOLDOWN: durationSetting('30s'),
        /** How long the provider's keys are used before they are fetched again. */
        AUTH_JWKS_CACHE_MAX_AGE: durationSetting('10m'),
        /** How long a verified API key is trusted before the profiles service is asked again (revocations are heard at once). */
        AUTH_API_KEY_CACHE_TTL: durationSetting('30s'),
        PUBLIC_URL: publicUrlSetting(),
        /**
         * Longest lifetime of a client bearer token (exp - iat, or exp - now without iat): seconds,
         * or with a unit (90m, 24h, 7d).
         */
        AUTH_MAX_TOKEN_LIFETIME: durationSetting(`${DEFAULT_MAX_TOKEN_LIFETIME_SECONDS}`),
        SUPERGRAPH_PATH: z.string().default(defaultSupergraph),
        /** Bytes a subscription socket may have unsent before it is closed as a slow consumer (1013). */
        SUBSCRIPTION_BUFFER_BYTES: z.coerce
          .number()
          .int()
          .min(16 * 1024)
          .default(1024 * 1024),
        /** Subscriptions one graphql-ws connection may hold at once. */
        SUBSCRIPTION_MAX_PER_CONNECTION: z.coerce.number().int().min(1).default(100),
        /**
         * From how many watched subjects of one subscription field new ones share one NATS consumer
         * of the field's whole pattern.
         */
        SUBSCRIPTION_PATTERN_CONSUMER_AT: z.coerce.number().int().min(0).default(32),
        /**
         * How long a granted subscription authorisation is remembered per caller and entity (ms; 0:
         * not at all): a subscribe to an entity deleted since may start within it, never later.
         */
        SUBSCRIPTION_AUTHORIZATION_MEMORY_MS: z.coerce.number().int().min(0).max(300_000).default(30_000),
        /** Requests a minute per caller with a valid token (its subject), a burst of a tenth allowed; 0: none. */
        RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(600),
        /** Requests a minute per client address without a valid token, likewise; 0: none. */
        RATE_LIMIT_ANONYMOUS_PER_MINUTE: z.coerce.number().int().min(0).default(60),
        /** Proxies in front of the gateway whose X-Forwarded-For tells the client's address (0: the peer's). */
        TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
        /** Trusted documents: off, log (run everything, log operations not in the manifests) or enforce (run only theirs). */
        TRUSTED_DOCUMENTS: z.enum(['off', 'log', 'enforce']).default('off'),
        /** Whether identical subgraph queries in flight for the same caller are sent once (subgraph-source.ts). */
        SUBGRAPH_SHARE_INFLIGHT: z.enum(['on', 'off']).default('on'),
        /** Persisted query manifests (Apollo's format), comma-separated paths; by default the project's own clients'. */
        TRUSTED_DOCUMENTS_MANIFEST: z
          .string()
          .default(defaultManifest)
          .transform((value) =>
            value
              .split(',')
              .map((path) => path.trim())
              .filter(Boolean),
          ),
        /**
         * Origins (comma-separated) whose pages may call the gateway besides its own: CORS on HTTP
         * and SSE, and the graphql-ws upgrade's Origin check. Default: none.
         */
        CORS_ORIGINS: z
          .string()
          .default('')
          .transform((value, ctx) => {
            try {
              return parseOrigins(value);
            } catch (error) {
              ctx.addIssue({ code: 'custom', message: (error as Error).message });
              return [];
            }
          }),
        /** The built web dashboard, served at `/` (services/dashboard/dist). */
        DASHBOARD_DIR: z.string().default(defaultDashboard),
        /** The dashboard's public client id at the identity provider (AUTH_ISSUER): enables its OIDC sign-in. */
        DASHBOARD_OIDC_CLIENT_ID: z.string().min(1).optional(),
        /** Subgraph URL overrides (PROFILES_URL, ...) are read by name in supergraph.ts. */
      },
      env,
    ),
  );
export type GatewayEnv = ReturnType<typeof readEnv>;

/** The identity provider's settings, when AUTH_JWKS_URL is set. */
export function oidcOptions(env: GatewayEnv): OidcOptions | undefined {
  if (!env.AUTH_JWKS_URL || !env.AUTH_ISSUER || !env.AUTH_AUDIENCE) return undefined;
  return {
    jwksUrl: env.AUTH_JWKS_URL,
    issuer: env.AUTH_ISSUER,
    audience: env.AUTH_AUDIENCE.split(',')
      .map((a) => a.trim())
      .filter(Boolean),
    claims: {
      subject: env.AUTH_CLAIM_SUBJECT,
      tenant: env.AUTH_CLAIM_TENANT,
      tenantAdmin: env.AUTH_CLAIM_TENANT_ADMIN,
      projects: env.AUTH_CLAIM_PROJECTS,
    },
    cooldownMs: env.AUTH_JWKS_COOLDOWN * 1000,
    cacheMaxAgeMs: env.AUTH_JWKS_CACHE_MAX_AGE * 1000,
  };
}

/** The dashboard the gateway serves, with its OIDC sign-in when the provider and a client id are set. */
export function dashboardOptions(env: GatewayEnv): DashboardOptions {
  return {
    dir: env.DASHBOARD_DIR,
    ...(env.AUTH_ISSUER && env.DASHBOARD_OIDC_CLIENT_ID
      ? { oidc: { issuer: env.AUTH_ISSUER, clientId: env.DASHBOARD_OIDC_CLIENT_ID } }
      : {}),
  };
}
