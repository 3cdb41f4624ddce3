import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { BusError, createBus, createLogger, DEV_JWT_SECRET, signBearer, type Bus } from '@fleetgraph/kit/core';
import { startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { apiKeyRevoked, formatApiKey, hashApiKeySecret, verifyApiKey, type VerifiedApiKey } from '@fleetgraph/schema';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApiKeyVerifier, type ApiKeyVerifier } from './apikeys.js';
import { createAuthenticator } from './auth.js';

/**
 * The gateway's API key verification against a real nats-server, with a stand-in for the profiles
 * service (the same contract: `profiles.v1.apikey.verify`, `profiles.v1.apikey.revoked`) and two
 * verifiers playing two gateway replicas.
 */
const silent = createLogger('apikeys-test', 'silent');

const ulid = () => Array.from(randomBytes(26), (b) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[b % 32]).join('');

interface StoredKey extends VerifiedApiKey {
  secretHash: string;
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('API keys at the gateway', () => {
  let nats: NatsServer;
  let lonely: NatsServer | undefined;
  let profiles: Bus;
  const buses: Bus[] = [];
  const verifiers: ApiKeyVerifier[] = [];
  const keys = new Map<string, StoredKey>();
  let asked = 0;
  /** Delays the profiles service's next answer until this resolves. */
  let hold: Promise<void> | undefined;
  const logged: string[] = [];
  const log = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _encoding, done) {
        logged.push(String(chunk));
        done();
      },
    }),
  );

  beforeAll(async () => {
    nats = await startNatsServer();
    profiles = await createBus({
      url: nats.url,
      name: 'profiles',
      log: silent,
      credentials: await nats.credentials('profiles'),
    });
    profiles.serve(verifyApiKey, async ({ id, secretHash }) => {
      asked++;
      const key = keys.get(id);
      const answer = key && key.secretHash === secretHash ? { ...key } : undefined;
      if (hold) await hold;
      if (!answer) throw new BusError('NOT_FOUND', 'no such API key');
      const { secretHash: _hash, ...reply } = answer;
      return reply;
    });
  });

  afterAll(async () => {
    for (const verifier of verifiers) verifier.close();
    for (const bus of buses) await bus.close();
    await profiles?.close();
    await nats?.stop();
    await lonely?.stop();
  });

  beforeEach(() => {
    asked = 0;
    hold = undefined;
  });

  /** A gateway replica's verifier, on a connection of its own; `revoked` collects the subjects it was told to end. */
  async function replica(name: string) {
    const bus = await createBus({ url: nats.url, name, log: silent, credentials: await nats.credentials(name) });
    buses.push(bus);
    const revoked: string[] = [];
    const verifier = createApiKeyVerifier({ bus, log, onRevoked: (subject) => revoked.push(subject) });
    verifiers.push(verifier);
    await bus.flush();
    return { verifier, revoked };
  }

  /** Stores a key as the profiles service would; its text. */
  function addKey(overrides: Partial<StoredKey> = {}): { id: string; text: string; secret: string } {
    const id = `apk_${ulid()}`;
    const secret = randomBytes(32).toString('base64url');
    keys.set(id, {
      id,
      tenantId: 't1',
      projectId: 'p1',
      role: 'EDITOR',
      expiresAt: null,
      revokedAt: null,
      secretHash: hashApiKeySecret(secret),
      ...overrides,
    });
    return { id, text: formatApiKey(id, secret), secret };
  }

  /** Revokes a key as the profiles service does: stored first, then announced. */
  function revoke(id: string) {
    keys.get(id)!.revokedAt = new Date().toISOString();
    profiles.send(apiKeyRevoked, { id, tenantId: 't1' });
  }

  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => 'accepted',
      (error: Error & { reason?: string }) => `${error.reason}: ${error.message}`,
    );

  it('should verify a key into its project role, asking the profiles service once while it is remembered', async () => {
    const { verifier } = await replica('gateway-a');
    const key = addKey();
    const verified = await verifier.verify(key.text);
    expect(verified.identity.claims).toEqual({ sub: `apikey:${key.id}`, tenantId: 't1', projects: { p1: 'editor' } });
    expect(verified.expiresAt).toBeUndefined();
    await Promise.all(Array.from({ length: 20 }, () => verifier.verify(key.text)));
    expect(asked).toBe(1);
    // A burst before anything is remembered asks once too.
    const other = addKey();
    await Promise.all(Array.from({ length: 20 }, () => verifier.verify(other.text)));
    expect(asked).toBe(2);
  });

  it('should refuse a wrong secret, an unknown id and a malformed key alike, and remember none', async () => {
    const { verifier } = await replica('gateway-b');
    const key = addKey();
    await verifier.verify(key.text);
    const wrong = formatApiKey(key.id, randomBytes(32).toString('base64url'));
    expect(await refusal(verifier.verify(wrong))).toBe('invalid: API key is invalid');
    expect(await refusal(verifier.verify(wrong))).toBe('invalid: API key is invalid');
    expect(await refusal(verifier.verify(formatApiKey(`apk_${ulid()}`, key.secret)))).toBe(
      'invalid: API key is invalid',
    );
    expect(await refusal(verifier.verify(`${key.text}x`))).toBe('invalid: API key is malformed');
    expect(asked).toBe(4);
    // The right key is still remembered.
    await verifier.verify(key.text);
    expect(asked).toBe(4);
  });

  it('should refuse a revoked key at once on every replica, and end its connections there', async () => {
    const a = await replica('gateway-c');
    const b = await replica('gateway-d');
    const key = addKey({ role: 'ADMIN' });
    await a.verifier.verify(key.text);
    await b.verifier.verify(key.text);
    revoke(key.id);
    await eventually(() => a.revoked.length > 0 && b.revoked.length > 0, 'the revocation on both replicas');
    expect([a.revoked, b.revoked]).toEqual([[`apikey:${key.id}`], [`apikey:${key.id}`]]);
    expect(await refusal(a.verifier.verify(key.text))).toBe('invalid: API key is revoked');
    expect(await refusal(b.verifier.verify(key.text))).toBe('invalid: API key is revoked');
  });

  it('should not remember an answer given before a revocation heard while it was on its way', async () => {
    const { verifier, revoked } = await replica('gateway-e');
    const key = addKey();
    let release!: () => void;
    hold = new Promise<void>((resolve) => (release = resolve));
    const verifying = refusal(verifier.verify(key.text));
    await eventually(() => asked === 1, 'the question');
    // The profiles service read the key as valid; it is revoked before its answer arrives.
    revoke(key.id);
    await eventually(() => revoked.length === 1, 'the revocation');
    hold = undefined;
    release();
    expect(await verifying).toBe('invalid: API key is revoked');
    expect(asked).toBe(2);
  });

  it('should refuse an expired key, remembered or not', async () => {
    const { verifier } = await replica('gateway-f');
    const key = addKey({ expiresAt: new Date(Date.now() + 300).toISOString() });
    expect((await verifier.verify(key.text)).expiresAt).toEqual(new Date(keys.get(key.id)!.expiresAt!));
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await refusal(verifier.verify(key.text))).toBe('expired: API key expired');
    expect(await refusal(verifier.verify(key.text))).toBe('expired: API key expired');
  });

  /** A verifier on a NATS where no profiles service answers. */
  async function stranded() {
    lonely ??= await startNatsServer();
    const bus = await createBus({
      url: lonely.url,
      name: 'stranded',
      log: silent,
      credentials: await lonely.credentials('stranded'),
    });
    buses.push(bus);
    const verifier = createApiKeyVerifier({ bus, log, timeoutMs: 300 });
    verifiers.push(verifier);
    return verifier;
  }

  it('should tell a key that cannot be checked now from a bad one', async () => {
    const verifier = await stranded();
    expect(await refusal(verifier.verify(addKey().text))).toBe(
      'unavailable: API keys cannot be verified now; retry shortly',
    );
  });

  it('should never log a key or its secret', async () => {
    logged.length = 0;
    const { verifier } = await replica('gateway-g');
    const key = addKey();
    await verifier.verify(key.text);
    const wrong = formatApiKey(key.id, randomBytes(32).toString('base64url'));
    await refusal(verifier.verify(wrong));
    await refusal(verifier.verify(`${key.text}x`));
    await refusal((await stranded()).verify(key.text));
    // What is logged (a failure to verify, with its error) names the key's id only.
    const output = logged.join('\n');
    expect(output).toContain('could not verify an API key');
    expect(output).toContain(key.id);
    for (const secret of [key.text, key.secret, wrong, wrong.slice(-43)]) expect(output).not.toContain(secret);
  });

  it('should send API keys and JWTs each their own way, and refuse keys where they are not accepted', async () => {
    const { verifier } = await replica('gateway-h');
    const key = addKey({ role: 'VIEWER' });
    const withKeys = createAuthenticator({ jwtSecret: DEV_JWT_SECRET, apiKeys: verifier });
    const withoutKeys = createAuthenticator({ jwtSecret: DEV_JWT_SECRET });
    const jwt = await signBearer({ sub: 'u1', tenantId: 't1' }, DEV_JWT_SECRET, '1h');
    expect((await withKeys(`Bearer ${key.text}`)).identity.userId).toBe(`apikey:${key.id}`);
    expect((await withKeys(`bearer ${jwt}`)).identity.userId).toBe('u1');
    expect(await refusal(withoutKeys(`Bearer ${key.text}`))).toBe('invalid: API keys are not accepted here');
    expect(await refusal(withKeys(key.text))).toBe('invalid: authorization must be "Bearer <token>"');
    expect(await refusal(withKeys(undefined))).toBe('missing: missing bearer token');
    expect(() => createAuthenticator({})).toThrow(/no way to sign in/);
  });
});
