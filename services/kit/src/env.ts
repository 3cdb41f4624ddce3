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

/** The shortest secret production accepts. */
export const PRODUCTION_SECRET_MIN_LENGTH = 32;

/**
 * What production demands of a setting beyond its schema: see {@link secretSetting} and
 * {@link requiredInProduction}.
 */
type ProductionRule = { kind: 'secret'; development: string; unlessSet?: string } | { kind: 'required'; why: string };
const productionRules = new WeakMap<z.ZodType, ProductionRule>();

/**
 * A secret with a public development default: fine for `pnpm start` and tests, refused with
 * `NODE_ENV=production`, where it must be set, to at least {@link PRODUCTION_SECRET_MIN_LENGTH}
 * characters.
 */
export function secretSetting(development: string, minLength = 16) {
  const schema = z.string().min(minLength).default(development);
  productionRules.set(schema, { kind: 'secret', development });
  return schema;
}

/**
 * A secret that turns a feature on, which production may leave off when another setting,
 * `unlessSet`, is given instead: unset in production while `unlessSet` is set, it parses as
 * undefined (the feature is off); unset otherwise, it is the development default, with the rules
 * of {@link secretSetting} in production. (AUTH_JWT_SECRET: HS256 tokens, which production may go
 * without once AUTH_JWKS_URL names the organisation's identity provider.)
 */
export function optionalSecretSetting(development: string, unlessSet: string, minLength = 16) {
  const schema = z.string().min(minLength).optional();
  productionRules.set(schema, { kind: 'secret', development, unlessSet });
  return schema;
}

/**
 * A setting production must set explicitly (its default only suits a developer's machine); `why`
 * ends the error line.
 */
export function requiredInProduction<T extends z.ZodType>(schema: T, why: string): T {
  productionRules.set(schema, { kind: 'required', why });
  return schema;
}

/**
 * The gateway's public GraphQL URL (`https://fleet.example.com/graphql`): the one source of
 * every link the API hands out, read by every process that makes one. `pnpm start` sets it from
 * the gateway's real address; production must set it.
 */
export function publicUrlSetting() {
  return requiredInProduction(
    z.string().url().default('http://localhost:4000/graphql'),
    'the URL clients reach the gateway at, e.g. https://fleet.example.com/graphql',
  );
}

/** Where the gateway's other routes live, from its public GraphQL URL: that URL less its last `/graphql` segment. */
export function publicBase(publicUrl: string): string {
  const url = new URL(publicUrl);
  url.pathname = url.pathname.replace(/\/graphql\/?$/, '') || '/';
  url.search = '';
  return url.toString().replace(/\/$/, '');
}

/** Settings every service reads; each service extends this shape with its own. */
export const serviceEnvShape = {
  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  /** How many NATS nodes keep each JetStream stream: 3 on a NATS cluster, 1 on a single server. */
  NATS_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
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
  INTERNAL_AUTH_SECRET: secretSetting(DEV_INTERNAL_SECRET),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
};

/**
 * Parses the environment against a zod object schema. Empty strings count as unset, so that
 * `FOO= cmd` falls back to the default. Fails with every problem at once, not the first.
 */
export function parseEnv<S extends z.ZodRawShape>(
  shape: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<z.ZodObject<S>> {
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const result = z.object(shape).safeParse(input);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  applyOptionalSecretDefaults(shape, input, result.data as Record<string, unknown>);
  if (input.NODE_ENV === 'production') {
    const problems = productionProblems(shape, input, result.data as Record<string, unknown>);
    if (problems.length > 0) throw new ConfigError(problems);
  }
  return result.data;
}

/** The development default of each optional secret left unset, unless production goes without it (optionalSecretSetting). */
function applyOptionalSecretDefaults(
  shape: z.ZodRawShape,
  input: Record<string, unknown>,
  data: Record<string, unknown>,
) {
  for (const [key, schema] of Object.entries(shape)) {
    const rule = productionRules.get(schema as z.ZodType);
    if (rule?.kind !== 'secret' || rule.unlessSet === undefined || data[key] !== undefined) continue;
    if (input.NODE_ENV === 'production' && input[rule.unlessSet] !== undefined) continue;
    data[key] = rule.development;
  }
}

/**
 * What keeps a configuration from being safe in production, one line per variable: secrets
 * left at their public development default or too short, settings production must set, and a
 * NATS connection without credentials.
 */
function productionProblems(
  shape: z.ZodRawShape,
  input: Record<string, unknown>,
  data: Record<string, unknown>,
): string[] {
  const problems: string[] = [];
  for (const [key, schema] of Object.entries(shape)) {
    const rule = productionRules.get(schema as z.ZodType);
    if (!rule) continue;
    const value = data[key];
    if (rule.kind === 'required' && input[key] === undefined) {
      problems.push(`${key}: required in production (${rule.why})`);
    } else if (rule.kind === 'secret' && value === rule.development) {
      problems.push(
        `${key}: is the public development default; ` +
          `set a secret of your own (at least ${PRODUCTION_SECRET_MIN_LENGTH} characters)` +
          (rule.unlessSet ? `, or leave it unset and set ${rule.unlessSet}` : ''),
      );
    } else if (rule.kind === 'secret' && typeof value === 'string' && value.length < PRODUCTION_SECRET_MIN_LENGTH) {
      problems.push(
        `${key}: too short for production (${value.length} characters; at least ${PRODUCTION_SECRET_MIN_LENGTH})`,
      );
    }
  }
  // NATS authenticates every process in production (decentralised JWT auth).
  if (
    'NATS_CREDENTIALS' in shape &&
    data.NATS_URL !== undefined &&
    input.NATS_CREDENTIALS === undefined &&
    input.NATS_CREDENTIALS_FILE === undefined
  ) {
    problems.push(
      'NATS_CREDENTIALS or NATS_CREDENTIALS_FILE: required in production ' +
        '(every process connects to NATS as its own user)',
    );
  }
  return problems;
}

/**
 * The process's NATS credentials: NATS_CREDENTIALS, or the file NATS_CREDENTIALS_FILE names;
 * undefined without either.
 */
export function natsCredentials(env: {
  NATS_CREDENTIALS?: string;
  NATS_CREDENTIALS_FILE?: string;
}): string | undefined {
  if (env.NATS_CREDENTIALS) return env.NATS_CREDENTIALS;
  if (env.NATS_CREDENTIALS_FILE) return readFileSync(env.NATS_CREDENTIALS_FILE, 'utf8');
  return undefined;
}
