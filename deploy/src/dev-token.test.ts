import { createBearerVerifier, DEV_JWT_SECRET, verifyBearer } from '@fleetgraph/kit/core';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { devToken, UsageError } from './dev-token.js';

const lifetimeOf = (token: string) => {
  const { exp, iat } = decodeJwt(token);
  return exp! - iat!;
};

describe('pnpm token', () => {
  it('should print a token the gateway accepts, for 12 hours by default', async () => {
    const token = (await devToken(['--tenant', 'acme', '--project', 'web=admin'], {})) as string;
    expect(lifetimeOf(token)).toBe(12 * 3600);
    const { identity } = await verifyBearer(`Bearer ${token}`, DEV_JWT_SECRET);
    expect([identity.tenantId, identity.role('web')]).toEqual(['acme', 'admin']);
  });

  it('should print tokens up to the maximum lifetime, and refuse a longer --expires', async () => {
    for (const expires of ['90m', '24h', '1d', '86400']) {
      const token = (await devToken(['--expires', expires], {})) as string;
      await expect(verifyBearer(`Bearer ${token}`, DEV_JWT_SECRET), expires).resolves.toBeDefined();
    }
    for (const expires of ['25h', '2d', '86401', '100000d']) {
      await expect(devToken(['--expires', expires], {}), expires).rejects.toThrow(UsageError);
    }
    await expect(devToken(['--expires', 'soon'], {})).rejects.toThrow(/not a duration/);
    await expect(devToken(['--expires', '-1h'], {})).rejects.toThrow(UsageError);
  });

  it('should follow AUTH_MAX_TOKEN_LIFETIME and AUTH_JWT_SECRET, as the gateway does', async () => {
    const env = { AUTH_MAX_TOKEN_LIFETIME: '1h', AUTH_JWT_SECRET: 'a-production-secret-of-some-length' };
    const verify = createBearerVerifier(env.AUTH_JWT_SECRET, { maxLifetimeSeconds: 3600 });
    // The default 12 hours capped to the maximum.
    const capped = (await devToken([], env)) as string;
    expect(lifetimeOf(capped)).toBe(3600);
    await expect(verify(`Bearer ${capped}`)).resolves.toBeDefined();
    await expect(verify(`Bearer ${(await devToken(['--expires', '30m'], env)) as string}`)).resolves.toBeDefined();
    await expect(devToken(['--expires', '2h'], env)).rejects.toThrow(/longer than the 3600 s/);
    await expect(devToken([], { AUTH_MAX_TOKEN_LIFETIME: 'forever' })).rejects.toThrow(UsageError);
  });
});
