import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { AuthenticationError } from './errors.js';
import { claimsSchema, Identity, type Claims, type ProjectRole } from './identity.js';
import { authenticationFailure, checkLifetime, TOKEN_CLOCK_TOLERANCE_SECONDS } from './jwt.js';
import {
  assertPersonSubject,
  DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
  hs256Verifier,
  type BearerPolicy,
  type TokenVerifier,
} from './tokens.js';

/**
 * Which claims of an identity provider's token carry what Fleetgraph needs. Each is a claim name,
 * such as `tenantId` or `https://fleet.example.com/tenant`; a name that is not a claim of the token
 * but holds dots is followed as a path into nested objects (`realm_access.roles`).
 */
export interface ClaimMapping {
  /** The user id. @default 'sub' */
  subject: string;
  /** The tenant id. @default 'tenantId' */
  tenant: string;
  /** The tenant-admin flag: `true` (or `"true"`) reads every project of the tenant. @default 'tenantAdmin' */
  tenantAdmin: string;
  /**
   * The project roles: an object `{ "<projectId>": "admin" | "editor" | "viewer" }`, or a list of
   * `"<projectId>:<role>"` strings (the form group claims take; other entries are ignored, and the
   * highest role of a project counts). @default 'projects'
   */
  projects: string;
}

/** The claim names of Fleetgraph's own tokens (contract.graphql), used unless the mapping renames them. */
export const DEFAULT_CLAIM_MAPPING: ClaimMapping = Object.freeze({
  subject: 'sub',
  tenant: 'tenantId',
  tenantAdmin: 'tenantAdmin',
  projects: 'projects',
});

/**
 * The signature algorithms accepted from an identity provider: asymmetric ones only, so that its
 * public keys can never serve as an HMAC secret (HS256 tokens go to the development secret, if any).
 */
export const OIDC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** The organisation's identity provider, whose tokens the gateway accepts beside its own (AUTH_JWKS_URL, ...). */
export interface OidcOptions extends BearerPolicy {
  /** Where its signing keys are published (a JSON Web Key Set; redirects are not followed). */
  jwksUrl: string;
  /** The `iss` its tokens must carry, exactly. */
  issuer: string;
  /** The `aud` its tokens must carry: one of these. */
  audience: string | readonly string[];
  /** Claim names; each defaults to DEFAULT_CLAIM_MAPPING's. */
  claims?: Partial<ClaimMapping>;
  /**
   * After a fetch of the keys, how long a token with an unknown `kid` is refused without fetching
   * them again (jose's `cooldownDuration`): a key the provider adds is accepted at most this long
   * after the last fetch, and tokens with made-up `kid`s cause at most one fetch per period.
   * @default 30000
   */
  cooldownMs?: number;
  /** How long fetched keys are used before they are fetched again (jose's `cacheMaxAge`). @default 600000 */
  cacheMaxAgeMs?: number;
  /** How long a fetch of the keys may take. @default 5000 */
  timeoutMs?: number;
}

/** A claim by name, or, when the token has no claim of that name, by a dotted path into nested objects. */
function claim(payload: JWTPayload, name: string): unknown {
  if (name in payload) return payload[name];
  if (!name.includes('.')) return undefined;
  let value: unknown = payload;
  for (const part of name.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

const roleRank: Record<string, number> = { viewer: 1, editor: 2, admin: 3 };

/** The project roles of a claim: an object of roles, or `"<projectId>:<role>"` strings among others. */
function projectRoles(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  const roles: Record<string, ProjectRole> = {};
  for (const entry of value) {
    const match = typeof entry === 'string' ? /^(.+):(admin|editor|viewer)$/i.exec(entry) : null;
    if (!match) continue;
    const project = match[1]!;
    const role = match[2]!.toLowerCase() as ProjectRole;
    const held = roles[project];
    if (!held || roleRank[role]! > roleRank[held]!) roles[project] = role;
  }
  return roles;
}

/**
 * Fleetgraph's claims from a verified token of the identity provider, read through the mapping.
 * @throws AuthenticationError when they are missing or malformed
 */
export function mapClaims(payload: JWTPayload, mapping: Partial<ClaimMapping> = {}): Claims {
  const names = { ...DEFAULT_CLAIM_MAPPING, ...mapping };
  const admin = claim(payload, names.tenantAdmin);
  const projects = claim(payload, names.projects);
  const parsed = claimsSchema.safeParse({
    sub: claim(payload, names.subject),
    tenantId: claim(payload, names.tenant),
    tenantAdmin: admin === 'true' ? true : admin === 'false' ? false : (admin ?? undefined),
    projects: projects == null ? undefined : projectRoles(projects),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = {
      sub: names.subject,
      tenantId: names.tenant,
      tenantAdmin: names.tenantAdmin,
      projects: names.projects,
    }[String(issue?.path[0]) as 'sub'];
    throw new AuthenticationError(`token claims are invalid: ${field ?? 'claims'}: ${issue?.message}`, 'invalid');
  }
  return assertPersonSubject(parsed.data);
}

/**
 * A TokenVerifier of the identity provider's tokens: signed with one of the keys it publishes at
 * `jwksUrl` (fetched when first needed, cached, fetched again after `cacheMaxAgeMs`, or for a `kid`
 * not seen before once `cooldownMs` has passed since the last fetch: a rotated key is taken without
 * a restart) with an asymmetric algorithm, of the issuer and an audience given, with `exp` and the
 * same lifetime rule as every client token (BearerPolicy), its claims read through the mapping.
 */
export function createOidcVerifier(options: OidcOptions): TokenVerifier {
  const keys = createRemoteJWKSet(new URL(options.jwksUrl), {
    cooldownDuration: options.cooldownMs ?? 30_000,
    cacheMaxAge: options.cacheMaxAgeMs ?? 600_000,
    timeoutDuration: options.timeoutMs ?? 5_000,
  });
  const policy = {
    maxLifetimeSeconds: options.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
    clockToleranceSeconds: options.clockToleranceSeconds ?? TOKEN_CLOCK_TOLERANCE_SECONDS,
  };
  const audience = typeof options.audience === 'string' ? options.audience : [...options.audience];
  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, keys, {
        algorithms: [...OIDC_ALGORITHMS],
        issuer: options.issuer,
        audience,
        requiredClaims: ['exp'],
        clockTolerance: policy.clockToleranceSeconds,
      });
      const expiresAt = checkLifetime(payload, policy);
      return { identity: new Identity(mapClaims(payload, options.claims)), expiresAt };
    } catch (error) {
      throw authenticationFailure(error);
    }
  };
}

/** What createJwtVerifier accepts: HS256 development tokens, the identity provider's, or both. */
export interface JwtVerifierOptions extends BearerPolicy {
  /** The secret of HS256 tokens (AUTH_JWT_SECRET); without it, HS256 tokens are refused. */
  hs256Secret?: string;
  /** The organisation's identity provider; without it, only HS256 tokens are accepted. */
  oidc?: OidcOptions;
}

/**
 * Verifies client JWTs of either kind, told apart by their header's algorithm: `HS256` is checked
 * against the development secret only, an asymmetric algorithm against the identity provider's keys
 * only, and anything else (`none`, HS384, ...) is refused. A token signed with HS256 using the
 * provider's public key as the secret thus never meets that key.
 */
export function createJwtVerifier(options: JwtVerifierOptions): TokenVerifier {
  const policy = {
    maxLifetimeSeconds: options.maxLifetimeSeconds,
    clockToleranceSeconds: options.clockToleranceSeconds,
  };
  const hs256 = options.hs256Secret === undefined ? undefined : hs256Verifier(options.hs256Secret, policy);
  const oidc =
    options.oidc &&
    createOidcVerifier({
      ...options.oidc,
      maxLifetimeSeconds: options.oidc.maxLifetimeSeconds ?? policy.maxLifetimeSeconds,
      clockToleranceSeconds: options.oidc.clockToleranceSeconds ?? policy.clockToleranceSeconds,
    });
  const asymmetric = new Set<string>(OIDC_ALGORITHMS);
  return async (token) => {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch (error) {
      throw new AuthenticationError('token is invalid', 'invalid', { cause: error });
    }
    if (alg === 'HS256' && hs256) return hs256(token);
    if (typeof alg === 'string' && asymmetric.has(alg) && oidc) return oidc(token);
    throw new AuthenticationError('token algorithm is not accepted', 'invalid');
  };
}
