import { describe, expect, it, vi } from 'vitest';
import { DEV_INTERNAL_SECRET, DEV_JWT_SECRET } from '../env.js';
import { Identity } from './identity.js';
import {
  createBearerVerifier,
  signBearer,
  signInternalIdentity,
  verifyBearer,
  verifyInternalIdentity,
} from './tokens.js';

const identity = (extra: Partial<Identity['claims']> = {}) =>
  new Identity({ sub: 'u1', tenantId: 't1', projects: { p1: 'viewer', p2: 'editor', p3: 'admin' }, ...extra });

describe('Identity', () => {
  it.each([
    ['viewer', 'p1', true, false, false],
    ['editor', 'p2', true, true, false],
    ['admin', 'p3', true, true, true],
    ['no role', 'p4', false, false, false],
  ] as const)('should grant a %s in %s read %s, edit %s, admin %s', (_role, project, read, edit, admin) => {
    const id = identity();
    expect([id.canRead(project), id.can('editor', project), id.can('admin', project)]).toEqual([read, edit, admin]);
  });

  it('should let a tenant admin read every project of its tenant and write none by that right', () => {
    const id = identity({ tenantAdmin: true, projects: {} });
    expect(id.canRead('anything')).toBe(true);
    expect(id.can('viewer', 'anything')).toBe(false);
    expect(id.readScope()).toEqual({ tenantId: 't1' });
    expect(id.canSee({ tenantId: 't2', projectId: 'anything' })).toBe(false);
  });

  it('should scope reads to the tenant and the readable projects', () => {
    expect(identity().readScope()).toEqual({ tenantId: 't1', projectId: { in: ['p1', 'p2', 'p3'] } });
    expect(identity().readScope('p2')).toEqual({ tenantId: 't1', projectId: { eq: 'p2' } });
    expect(identity().readScope('p9')).toBeNull();
  });
});

describe('tokens', () => {
  it('should verify a bearer token it signed', async () => {
    const token = await signBearer({ sub: 'u1', tenantId: 't1' }, DEV_JWT_SECRET);
    const { identity: id } = await verifyBearer(`Bearer ${token}`, DEV_JWT_SECRET);
    expect(id.tenantId).toBe('t1');
  });

  it.each([
    ['missing', undefined, 'missing'],
    ['not bearer', 'Basic abc', 'invalid'],
    ['garbage', 'Bearer abc.def.ghi', 'invalid'],
  ])('should refuse a %s authorization', async (_what, header, reason) => {
    await expect(verifyBearer(header, DEV_JWT_SECRET)).rejects.toMatchObject({ name: 'AuthenticationError', reason });
  });

  it('should refuse a token signed with another secret, an expired one, and one with bad claims', async () => {
    const other = await signBearer({ sub: 'u1', tenantId: 't1' }, 'another-secret-of-enough-length');
    await expect(verifyBearer(`Bearer ${other}`, DEV_JWT_SECRET)).rejects.toMatchObject({ reason: 'invalid' });
    const expired = await signBearer({ sub: 'u1', tenantId: 't1' }, DEV_JWT_SECRET, Math.floor(Date.now() / 1000) - 60); // beyond the 30 s clock tolerance
    await expect(verifyBearer(`Bearer ${expired}`, DEV_JWT_SECRET)).rejects.toMatchObject({ reason: 'expired' });
    const bad = await signBearer({ sub: 'u1', tenantId: 'has.dots' }, DEV_JWT_SECRET);
    await expect(verifyBearer(`Bearer ${bad}`, DEV_JWT_SECRET)).rejects.toMatchObject({ reason: 'invalid' });
  });

  it('should not accept a client token as the internal identity header', async () => {
    const client = await signBearer({ sub: 'u1', tenantId: 't1' }, DEV_INTERNAL_SECRET);
    await expect(verifyInternalIdentity(client, DEV_INTERNAL_SECRET)).rejects.toMatchObject({ reason: 'invalid' });
    const internal = await signInternalIdentity(identity(), DEV_INTERNAL_SECRET);
    await expect(verifyInternalIdentity(internal, DEV_INTERNAL_SECRET)).resolves.toMatchObject({ tenantId: 't1' });
  });
  it('should remember a verified token, refuse it once expired, and never let another token hit', async () => {
    vi.useFakeTimers({ now: new Date('2026-11-24T00:00:00Z'), toFake: ['Date'] });
    try {
      const verify = createBearerVerifier(DEV_JWT_SECRET, { max: 2 });
      const token = await signBearer({ sub: 'u1', tenantId: 't1' }, DEV_JWT_SECRET, '10m');
      const first = await verify(`Bearer ${token}`);
      // The same token: the same verified identity, shared.
      expect(await verify(`Bearer ${token}`)).toBe(first);
      // Its signature altered: verified on its own, and refused.
      await expect(verify(`Bearer ${token.slice(0, -2)}xx`)).rejects.toMatchObject({ reason: 'invalid' });
      const forged = await signBearer({ sub: 'u1', tenantId: 't1' }, 'another-secret-of-enough-length', '10m');
      await expect(verify(`Bearer ${forged}`)).rejects.toMatchObject({ reason: 'invalid' });
      await expect(verify(undefined)).rejects.toMatchObject({ reason: 'missing' });
      vi.setSystemTime(new Date('2026-11-24T00:11:00Z'));
      await expect(verify(`Bearer ${token}`)).rejects.toMatchObject({ reason: 'expired' });
    } finally {
      vi.useRealTimers();
    }
  });
});
