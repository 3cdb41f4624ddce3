import { SignJWT, type JWTPayload } from 'jose';
import { describe, expect, it } from 'vitest';
import { DEV_INTERNAL_SECRET, DEV_JWT_SECRET } from '../env.js';
import { hostileTokens, signHs256 } from '../testing/tokens.js';
import { Identity } from './identity.js';
import {
  createBearerVerifier,
  createInternalIdentitySigner,
  createInternalIdentityVerifier,
  DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
  parseDurationSeconds,
  signBearer,
  signInternalIdentity,
  TOKEN_CLOCK_TOLERANCE_SECONDS,
  verifyBearer,
  verifyInternalIdentity,
} from './tokens.js';

const now = () => Math.floor(Date.now() / 1000);
const claims = { sub: 'u1', tenantId: 't1', projects: { p1: 'viewer' } } as const;
const secretKey = (secret = DEV_JWT_SECRET) => new TextEncoder().encode(secret);
const hs256 = (payload: JWTPayload, secret = DEV_JWT_SECRET) => signHs256(payload, secret);

describe('bearer tokens', () => {
  it('should accept a token it signed, with its expiry', async () => {
    const token = await signBearer(claims, DEV_JWT_SECRET, '2h');
    const verified = await verifyBearer(`Bearer ${token}`, DEV_JWT_SECRET);
    expect(verified.identity.tenantId).toBe('t1');
    expect(Math.abs(verified.expiresAt!.getTime() - (Date.now() + 2 * 3600 * 1000))).toBeLessThan(5_000);
  });

  it('should refuse every hostile token, without a memory and with one', async () => {
    const tokens = await hostileTokens(DEV_JWT_SECRET, claims);
    expect(tokens.length).toBeGreaterThan(15);
    const remembering = createBearerVerifier(DEV_JWT_SECRET);
    for (const [what, token] of tokens) {
      await expect(verifyBearer(`Bearer ${token}`, DEV_JWT_SECRET), what).rejects.toMatchObject({
        name: 'AuthenticationError',
      });
      await expect(remembering(`Bearer ${token}`), what).rejects.toMatchObject({ name: 'AuthenticationError' });
      // Refused again: nothing of a refused token is remembered.
      await expect(remembering(`Bearer ${token}`), what).rejects.toMatchObject({ name: 'AuthenticationError' });
    }
  });

  it('should say why a token is refused', async () => {
    const t = now();
    const reason = async (payload: JWTPayload) =>
      (await verifyBearer(`Bearer ${await hs256(payload)}`, DEV_JWT_SECRET).catch((e: Error) => e)) as Error;
    expect((await reason({ ...claims, iat: t })).message).toBe('token has no expiry (exp)');
    expect((await reason({ ...claims, iat: t, exp: t + 2 * 86_400 })).message).toBe(
      `token lifetime exceeds the maximum of ${DEFAULT_MAX_TOKEN_LIFETIME_SECONDS} s`,
    );
    expect((await reason({ ...claims, iat: t, exp: t + 60, nbf: t + 60 })).message).toBe(
      'token is not valid yet (nbf)',
    );
    expect(await reason({ ...claims, iat: t - 600, exp: t - 60 })).toMatchObject({
      message: 'token expired',
      reason: 'expired',
    });
  });

  it('should tolerate a small clock skew on exp, nbf and iat, and no more', async () => {
    const t = now();
    const skew = TOKEN_CLOCK_TOLERANCE_SECONDS - 10;
    for (const payload of [
      { ...claims, iat: t - 600, exp: t - skew },
      { ...claims, iat: t, exp: t + 600, nbf: t + skew },
      { ...claims, iat: t + skew, exp: t + 600 },
    ]) {
      await expect(verifyBearer(`Bearer ${await hs256(payload)}`, DEV_JWT_SECRET)).resolves.toMatchObject({
        identity: { tenantId: 't1' },
      });
    }
    const beyond = TOKEN_CLOCK_TOLERANCE_SECONDS + 10;
    for (const payload of [
      { ...claims, iat: t - 600, exp: t - beyond },
      { ...claims, iat: t, exp: t + 600, nbf: t + beyond },
      { ...claims, iat: t + beyond, exp: t + 600 },
    ]) {
      await expect(verifyBearer(`Bearer ${await hs256(payload)}`, DEV_JWT_SECRET)).rejects.toMatchObject({
        name: 'AuthenticationError',
      });
    }
  });

  it('should accept a token of exactly the maximum lifetime, measured from iat, or from now without iat', async () => {
    const t = now();
    const max = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
    // Issued an hour ago for the whole maximum: fine, though it expires in 23 hours.
    await expect(
      verifyBearer(`Bearer ${await hs256({ ...claims, iat: t - 3600, exp: t - 3600 + max })}`, DEV_JWT_SECRET),
    ).resolves.toBeDefined();
    await expect(
      verifyBearer(`Bearer ${await hs256({ ...claims, exp: t + max - 60 })}`, DEV_JWT_SECRET),
    ).resolves.toBeDefined();
    await expect(
      verifyBearer(`Bearer ${await signBearer(claims, DEV_JWT_SECRET, '24h')}`, DEV_JWT_SECRET),
    ).resolves.toBeDefined();
    await expect(
      verifyBearer(`Bearer ${await signBearer(claims, DEV_JWT_SECRET, '25h')}`, DEV_JWT_SECRET),
    ).rejects.toMatchObject({ reason: 'invalid' });
  });

  it('should take the maximum lifetime as configured', async () => {
    const hour = await signBearer(claims, DEV_JWT_SECRET, '1h');
    const twoHours = await signBearer(claims, DEV_JWT_SECRET, '2h');
    const verify = createBearerVerifier(DEV_JWT_SECRET, { maxLifetimeSeconds: 90 * 60 });
    await expect(verify(`Bearer ${hour}`)).resolves.toMatchObject({ identity: { tenantId: 't1' } });
    await expect(verify(`Bearer ${twoHours}`)).rejects.toMatchObject({
      message: 'token lifetime exceeds the maximum of 5400 s',
    });
    const week = await signBearer(claims, DEV_JWT_SECRET, '7d');
    await expect(
      verifyBearer(`Bearer ${week}`, DEV_JWT_SECRET, { maxLifetimeSeconds: 8 * 86_400 }),
    ).resolves.toBeDefined();
  });

  it('should parse configured durations', () => {
    expect(['3600', '90m', '24h', '7d', ' 30 s ', '2H'].map(parseDurationSeconds)).toEqual([
      3600, 5400, 86_400, 604_800, 30, 7200,
    ]);
    expect(['', '0', '-5', '1.5h', '12 hours', 'h', '1w'].map(parseDurationSeconds)).toEqual(Array(7).fill(undefined));
  });
});

describe('the internal identity header', () => {
  it('should keep working, and refuse one without exp or from a client', async () => {
    const identity = new Identity({ ...claims });
    const header = await signInternalIdentity(identity, DEV_INTERNAL_SECRET);
    await expect(verifyInternalIdentity(header, DEV_INTERNAL_SECRET)).resolves.toMatchObject({ tenantId: 't1' });
    const t = now();
    const withoutExp = await new SignJWT({ ...claims, iat: t })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('fleetgraph-gateway')
      .setAudience('fleetgraph-subgraph')
      .sign(secretKey(DEV_INTERNAL_SECRET));
    await expect(verifyInternalIdentity(withoutExp, DEV_INTERNAL_SECRET)).rejects.toMatchObject({ reason: 'invalid' });
    const client = await signBearer(claims, DEV_INTERNAL_SECRET);
    await expect(verifyInternalIdentity(client, DEV_INTERNAL_SECRET)).rejects.toMatchObject({ reason: 'invalid' });
  });

  it('should give one caller the same token for most of its life, and another caller its own', async () => {
    let clock = Date.now();
    const sign = createInternalIdentitySigner(DEV_INTERNAL_SECRET, { reuseMs: 60_000, now: () => clock });
    const one = new Identity({ ...claims });
    const other = new Identity({ ...claims, projects: { p1: 'admin' } });
    const first = await sign(one);
    expect(await sign(one)).toBe(first);
    expect(await sign(other)).not.toBe(first);
    await expect(verifyInternalIdentity(await sign(other), DEV_INTERNAL_SECRET)).resolves.toMatchObject({
      claims: { projects: { p1: 'admin' } },
    });
    clock += 60_001;
    // A new one, a second later at least (iat is in seconds).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await sign(one)).not.toBe(first);
  });

  it('should remember a verified header until it expires, and never a refused one', async () => {
    const verify = createInternalIdentityVerifier(DEV_INTERNAL_SECRET);
    const header = await signInternalIdentity(new Identity({ ...claims }), DEV_INTERNAL_SECRET);
    const first = await verify(header);
    expect(await verify(header)).toBe(first);
    const tampered = `${header.slice(0, -2)}${header.endsWith('AA') ? 'BB' : 'AA'}`;
    await expect(verify(tampered)).rejects.toMatchObject({ reason: 'invalid' });
    await expect(verify(undefined)).rejects.toMatchObject({ reason: 'missing' });
    const t = now();
    const expired = await new SignJWT({ ...claims, iat: t - 600, exp: t - TOKEN_CLOCK_TOLERANCE_SECONDS - 1 })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('fleetgraph-gateway')
      .setAudience('fleetgraph-subgraph')
      .sign(secretKey(DEV_INTERNAL_SECRET));
    await expect(verify(expired)).rejects.toMatchObject({ reason: 'expired' });
    await expect(verify(expired)).rejects.toMatchObject({ reason: 'expired' });
  });
});
