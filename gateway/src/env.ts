import {
  DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
  DEV_JWT_SECRET,
  parseDurationSeconds,
  parseEnv,
  publicUrlSetting,
  secretSetting,
  serviceEnvShape,
} from '@fleetgraph/kit/core';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const defaultSupergraph = fileURLToPath(new URL('../../schema/supergraph.graphql', import.meta.url));

/** The gateway's environment; see the README for each variable. */
export const readEnv = (env: NodeJS.ProcessEnv = process.env) =>
  parseEnv(
    {
      ...serviceEnvShape,
      PORT: z.coerce.number().int().min(0).max(65535).default(4000),
      AUTH_JWT_SECRET: secretSetting(DEV_JWT_SECRET),
      PUBLIC_URL: publicUrlSetting(),
      /**
       * Longest lifetime of a client bearer token (exp - iat, or exp - now without iat): seconds,
       * or with a unit (90m, 24h, 7d).
       */
      AUTH_MAX_TOKEN_LIFETIME: z
        .string()
        .default(`${DEFAULT_MAX_TOKEN_LIFETIME_SECONDS}`)
        .transform((value, ctx) => {
          const seconds = parseDurationSeconds(value);
          if (seconds === undefined)
            ctx.addIssue({
              code: 'custom',
              message: 'a positive duration: seconds, or a number with s, m, h or d (e.g. 24h)',
            });
          return seconds ?? 0;
        }),
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
      /** Subgraph URL overrides (PROFILES_URL, ...) are read by name in supergraph.ts. */
    },
    env,
  );
export type GatewayEnv = ReturnType<typeof readEnv>;
