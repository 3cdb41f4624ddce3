import { parseArgs } from 'node:util';
import {
  claimsSchema,
  DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
  DEV_JWT_SECRET,
  parseDurationSeconds,
  signBearer,
} from '@fleetgraph/kit/core';
import { decodeJwt } from 'jose';

export const usage = `Prints a development bearer token.

  pnpm token --tenant acme --project web=admin [--project db=viewer] [--tenant-admin] [--user alice] [--expires 12h]

Signed with AUTH_JWT_SECRET (default: the development secret). Roles: admin, editor, viewer.
--expires: seconds, or a number with a unit (90m, 12h, 1d); at most AUTH_MAX_TOKEN_LIFETIME
(default 24h), the longest lifetime the gateway accepts, which is also the default when shorter than 12h.`;

/** The lifetime of a token printed without --expires, unless AUTH_MAX_TOKEN_LIFETIME is shorter. */
const DEFAULT_EXPIRY_SECONDS = 12 * 60 * 60;

/** What the command line asked for that cannot be a token: printed with the usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The command line's options. @throws UsageError */
function parseTokenArgs(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        tenant: { type: 'string', default: 'acme' },
        project: { type: 'string', multiple: true, default: [] },
        'tenant-admin': { type: 'boolean', default: false },
        user: { type: 'string', default: 'dev' },
        expires: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The token `pnpm token <args>` prints. @throws UsageError */
export async function devToken(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | { help: string }> {
  const values = parseTokenArgs(args);
  if (values.help) return { help: usage };

  // The gateway's maximum (AUTH_MAX_TOKEN_LIFETIME): a longer token would be refused there.
  const maxText = env.AUTH_MAX_TOKEN_LIFETIME || String(DEFAULT_MAX_TOKEN_LIFETIME_SECONDS);
  const max = parseDurationSeconds(maxText);
  if (max === undefined) throw new UsageError(`AUTH_MAX_TOKEN_LIFETIME=${maxText} is not a duration`);
  // By default 12 hours, or the maximum when it is shorter.
  const lifetime =
    values.expires === undefined ? Math.min(DEFAULT_EXPIRY_SECONDS, max) : parseDurationSeconds(values.expires);
  if (lifetime === undefined)
    throw new UsageError(`--expires ${values.expires} is not a duration (seconds, or a number with s, m, h or d)`);
  if (lifetime > max)
    throw new UsageError(
      `--expires ${values.expires} is longer than the ${max} s the gateway accepts (AUTH_MAX_TOKEN_LIFETIME${env.AUTH_MAX_TOKEN_LIFETIME ? `=${maxText}` : ': 24h by default'})`,
    );

  const projects = Object.fromEntries(
    values.project.map((p) => {
      const [id, role = 'admin'] = p.split('=');
      return [id, role];
    }),
  );
  const claims = claimsSchema.safeParse({
    sub: values.user,
    tenantId: values.tenant,
    tenantAdmin: values['tenant-admin'] || undefined,
    projects,
  });
  if (!claims.success)
    throw new UsageError(
      `invalid token claims: ${claims.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const token = await signBearer(claims.data, env.AUTH_JWT_SECRET || DEV_JWT_SECRET, `${lifetime}s`);
  // What the gateway checks, checked here too: an expiry, within the maximum from its issue.
  const { exp, iat } = decodeJwt(token);
  if (exp === undefined || iat === undefined || exp - iat > max)
    throw new Error('the token printed would not be accepted');
  return token;
}
