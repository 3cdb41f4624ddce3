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
import { Algorithms, createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds, fromSeed, type Permissions } from '@nats-io/jwt';

/** The seeds everything else is derived from. Secrets: never logged, never in an API answer. */
export interface NatsKeys {
  operatorSeed: string;
  systemAccountSeed: string;
  accountSeed: string;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const options = (expiresInSeconds?: number) => ({ algorithm: Algorithms.v2, ...(expiresInSeconds ? { exp: Math.floor(Date.now() / 1000) + expiresInSeconds } : {}) });

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
  const operatorJwt = await encodeOperator('fleetgraph', operator, { system_account: system.getPublicKey() }, options());
  const systemJwt = await encodeAccount('SYS', system, { limits: { subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1, wildcards: true } }, { ...options(), signer: operator });
  const accountJwt = await encodeAccount('FLEETGRAPH', account, { limits: UNLIMITED }, { ...options(), signer: operator });
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
export async function serviceCredentials(keys: Pick<NatsKeys, 'accountSeed'>, name: string, expiresInSeconds?: number): Promise<string> {
  const user = createUser();
  const jwt = await encodeUser(name, user, key(keys.accountSeed), {}, options(expiresInSeconds));
  return creds(jwt, decoder.decode(user.getSeed()));
}

/** The inbox prefix of a cluster's agent: its replies come there, and nowhere another client listens. */
export const agentInboxPrefix = (clusterId: string) => `_INBOX_${clusterId}`;

/**
 * What a cluster's agent may do, and nothing else: publish on its own subjects (reports, log
 * streams, credential refreshes), listen on its own subjects (commands, log stream credit) and its
 * own inbox, and answer the requests it receives.
 */
export function agentPermissions(clusterId: string): Permissions {
  const own = `agent.v1.${clusterId}.>`;
  return {
    pub: { allow: [own] },
    sub: { allow: [own, `${agentInboxPrefix(clusterId)}.>`] },
    resp: { max: 1, ttl: 0 },
  };
}

/**
 * Credentials of a cluster's agent, minted by the clusters service (which holds the account
 * seed): a user limited to the cluster's subjects, expiring after `expiresInSeconds`. With the
 * agent's own public key (a refresh), the agent keeps its seed and gets a new JWT only.
 */
export async function agentCredentials(keys: Pick<NatsKeys, 'accountSeed'>, clusterId: string, expiresInSeconds: number, agentSeed?: string): Promise<{ creds: string; jwt: string; seed: string; expiresAt: Date }> {
  const user = agentSeed ? key(agentSeed) : createUser();
  const seed = decoder.decode(user.getSeed());
  const jwt = await encodeUser(`agent-${clusterId}`, user, key(keys.accountSeed), { ...agentPermissions(clusterId), tags: [`cluster:${clusterId}`] }, options(expiresInSeconds));
  return { creds: creds(jwt, seed), jwt, seed, expiresAt: new Date((Math.floor(Date.now() / 1000) + expiresInSeconds) * 1000) };
}
