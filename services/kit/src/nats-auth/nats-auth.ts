/**
 * NATS decentralised JWT authentication (ARCHITECTURE.md, Security): an operator, the system
 * account and the platform's account, each an nkey; a user JWT for every service process (its
 * own name, the whole platform account) and for every cluster's agent (only its own subjects,
 * short-lived, refreshed over NATS). nats-server 2.9 reads the operator and the accounts from its
 * configuration (`resolver: MEMORY` with the account JWTs preloaded); clients present a
 * credentials file (user JWT and seed).
 *
 * The keys are generated once (under DATA_DIR for `pnpm start`, per suite in tests) or given by
 * configuration in production (NATS_OPERATOR_SEED, NATS_ACCOUNT_SEED, NATS_SYSTEM_ACCOUNT_SEED,
 * each service's NATS_CREDENTIALS).
 */
import {
  Algorithms,
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  fromPublic,
  fromSeed,
  type Permissions,
} from '@nats-io/jwt';

/** The seeds everything else is derived from. Secrets: never logged, never in an API answer. */
export interface NatsKeys {
  operatorSeed: string;
  systemAccountSeed: string;
  accountSeed: string;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const options = (expiresInSeconds?: number) => ({
  algorithm: Algorithms.v2,
  ...(expiresInSeconds ? { exp: Math.floor(Date.now() / 1000) + expiresInSeconds } : {}),
});

/** Every limit of an account JWT, unlimited: a partial `limits` leaves the rest at 0 (no connection, no JetStream). */
const UNLIMITED = {
  subs: -1,
  conn: -1,
  leaf: -1,
  imports: -1,
  exports: -1,
  data: -1,
  payload: -1,
  wildcards: true,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

/** New operator, system account and platform account keys. */
export function generateNatsKeys(): NatsKeys {
  return {
    operatorSeed: decoder.decode(createOperator().getSeed()),
    systemAccountSeed: decoder.decode(createAccount().getSeed()),
    accountSeed: decoder.decode(createAccount().getSeed()),
  };
}

const key = (seed: string) => fromSeed(encoder.encode(seed));

/** The platform account's public key (`A...`): what user JWTs name as their issuer. */
export function accountPublicKey(keys: Pick<NatsKeys, 'accountSeed'>): string {
  return key(keys.accountSeed).getPublicKey();
}

/**
 * The nats-server configuration of the security: the operator JWT, the system account, and the
 * account JWTs preloaded into a memory resolver. Append `port`, `jetstream` and the rest.
 */
export async function natsServerSecurityConfig(keys: NatsKeys): Promise<string> {
  const operator = key(keys.operatorSeed);
  const system = key(keys.systemAccountSeed);
  const account = key(keys.accountSeed);
  const operatorJwt = await encodeOperator(
    'fleetgraph',
    operator,
    { system_account: system.getPublicKey() },
    options(),
  );
  const systemJwt = await encodeAccount(
    'SYS',
    system,
    { limits: { subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1, wildcards: true } },
    { ...options(), signer: operator },
  );
  const accountJwt = await encodeAccount(
    'FLEETGRAPH',
    account,
    { limits: UNLIMITED },
    { ...options(), signer: operator },
  );
  return [
    `operator: ${operatorJwt}`,
    `system_account: ${system.getPublicKey()}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  ${system.getPublicKey()}: ${systemJwt}`,
    `  ${account.getPublicKey()}: ${accountJwt}`,
    '}',
    '',
  ].join('\n');
}

/** A credentials file (the `.creds` format every NATS client reads) for a user JWT and its seed. */
function creds(jwt: string, userSeed: string): string {
  return decoder.decode(fmtCreds(jwt, key(userSeed)));
}

/**
 * Credentials of a platform process (a service, the gateway, the local cloud): a user of the
 * platform account named after it, with the account's permissions.
 */
export async function serviceCredentials(
  keys: Pick<NatsKeys, 'accountSeed'>,
  name: string,
  expiresInSeconds?: number,
): Promise<string> {
  const user = createUser();
  const jwt = await encodeUser(name, user, key(keys.accountSeed), {}, options(expiresInSeconds));
  return creds(jwt, decoder.decode(user.getSeed()));
}

/** A user's permissions, as a user JWT carries them. */
export type NatsPermissions = Permissions;

/** What a confined client may publish on, listen on, and where the replies to its requests come. */
export interface Confinement {
  publish: readonly string[];
  subscribe: readonly string[];
  /** Its inbox prefix: it listens on `<inboxPrefix>.>` for the replies to its requests. */
  inboxPrefix: string;
}

/**
 * What a client limited to its own subjects may do, and nothing else: publish on some, listen on
 * others and on its own inbox prefix (so no other client's replies reach it), and answer each
 * request it receives once. A cluster's agent gets this (the contract's `agentSubjects`).
 *
 * The two sets must not overlap, and it may not publish on its inbox: NATS lets a client answer
 * any message it receives, its own included, so a client that heard what it published could
 * publish anywhere by naming the target as the reply subject of a message to itself.
 *
 * @throws TypeError when a subject it may publish on could reach it
 */
export function confinedPermissions(confinement: Confinement): NatsPermissions {
  const listens = [...confinement.subscribe, `${confinement.inboxPrefix}.>`];
  for (const published of confinement.publish) {
    const heard = listens.find((listened) => subjectsOverlap(published, listened));
    if (heard) throw new TypeError(`a confined client may not hear what it publishes: ${published} and ${heard}`);
  }
  return {
    pub: { allow: [...confinement.publish] },
    sub: { allow: listens },
    resp: { max: 1, ttl: 0 },
  };
}

/** Whether some subject matches both NATS subject filters (`*` one token, `>` the rest). */
export function subjectsOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] === '>' || y[i] === '>') return x[i] !== undefined && y[i] !== undefined;
    if (x[i] === undefined || y[i] === undefined) return false;
    if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  }
  return true;
}

/**
 * Credentials of a confined user (a cluster's agent), minted by who holds the account seed (the
 * clusters service), expiring after `expiresInSeconds`. With the user's own seed (a renewal) the
 * key stays and only the JWT is new.
 */
export async function confinedCredentials(
  keys: Pick<NatsKeys, 'accountSeed'>,
  user: { name: string; permissions: NatsPermissions; tags?: string[] },
  expiresInSeconds: number,
  seed?: string,
): Promise<{ creds: string; jwt: string; seed: string; publicKey: string; expiresAt: Date }> {
  const pair = seed ? key(seed) : createUser();
  const userSeed = decoder.decode(pair.getSeed());
  const exp = Math.floor(Date.now() / 1000) + expiresInSeconds;
  const jwt = await encodeUser(
    user.name,
    pair,
    key(keys.accountSeed),
    { ...user.permissions, tags: user.tags ?? [] },
    { algorithm: Algorithms.v2, exp },
  );
  return {
    creds: creds(jwt, userSeed),
    jwt,
    seed: userSeed,
    publicKey: pair.getPublicKey(),
    expiresAt: new Date(exp * 1000),
  };
}

/**
 * A new JWT for a confined user's existing key (a renewal: the user proves nothing here; who may
 * ask is decided by the subject the request came on, which only that user and the platform may
 * publish on).
 */
export async function confinedUserJwt(
  keys: Pick<NatsKeys, 'accountSeed'>,
  publicKey: string,
  user: { name: string; permissions: NatsPermissions; tags?: string[] },
  expiresInSeconds: number,
): Promise<{ jwt: string; expiresAt: Date }> {
  const exp = Math.floor(Date.now() / 1000) + expiresInSeconds;
  const jwt = await encodeUser(
    user.name,
    fromPublic(publicKey),
    key(keys.accountSeed),
    { ...user.permissions, tags: user.tags ?? [] },
    { algorithm: Algorithms.v2, exp },
  );
  return { jwt, expiresAt: new Date(exp * 1000) };
}
