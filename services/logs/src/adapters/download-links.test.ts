import { describe, expect, it } from 'vitest';
import type { LogBundle } from '../domain/bundle.js';
import { DownloadLinks } from './download-links.js';

const links = new DownloadLinks({
  secret: 'a-download-secret-of-32-characters!!',
  publicUrl: 'https://fleet.example.com/',
  ttlSeconds: 600,
});
const ready = (overrides: Partial<LogBundle> = {}) =>
  ({
    id: 'lb_1',
    tenantId: 't1',
    status: 'READY',
    fileName: 'web-logs-20260101-000000.zip',
    expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    ...overrides,
  }) as LogBundle;

describe('DownloadLinks', () => {
  it('should mint a link under the public URL whose token names the bundle and tenant', async () => {
    const url = new URL((await links.urlFor(ready()))!);
    expect(`${url.origin}${url.pathname}`).toBe(
      'https://fleet.example.com/logs/download/lb_1/web-logs-20260101-000000.zip',
    );
    await expect(links.verify(url.searchParams.get('token')!)).resolves.toEqual({ bundleId: 'lb_1', tenantId: 't1' });
  });

  it('should mint no link for a bundle that is not READY or whose archive expired', async () => {
    await expect(links.urlFor(ready({ status: 'COLLECTING' }))).resolves.toBeNull();
    await expect(links.urlFor(ready({ expiresAt: new Date(Date.now() - 1).toISOString() }))).resolves.toBeNull();
  });

  it('should not let a link outlive the archive', async () => {
    const expiresAt = new Date(Date.now() + 30_000);
    const token = new URL((await links.urlFor(ready({ expiresAt: expiresAt.toISOString() })))!).searchParams.get(
      'token',
    )!;
    const { exp } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(exp).toBe(Math.floor(expiresAt.getTime() / 1000));
  });

  it.each([
    ['missing', undefined, 'invalid'],
    ['garbage', 'abc.def.ghi', 'invalid'],
  ])('should refuse a %s token', async (_what, token, reason) => {
    await expect(links.verify(token)).rejects.toMatchObject({ name: 'DownloadTokenError', reason });
  });

  it('should refuse an expired token and one signed with another secret', async () => {
    const expired = await links.sign(
      { bundleId: 'lb_1', tenantId: 't1' },
      new Date(Date.now() - 1000),
      new Date(Date.now() - 60_000),
    );
    await expect(links.verify(expired)).rejects.toMatchObject({ reason: 'expired' });
    const other = new DownloadLinks({
      secret: 'another-secret-of-thirty-two-chars!!',
      publicUrl: 'https://x',
      ttlSeconds: 60,
    });
    const forged = await other.sign({ bundleId: 'lb_1', tenantId: 't1' }, new Date(Date.now() + 60_000));
    await expect(links.verify(forged)).rejects.toMatchObject({ reason: 'invalid' });
  });

  it('should refuse a secret shorter than 32 characters', () => {
    expect(() => new DownloadLinks({ secret: 'short', publicUrl: 'https://x', ttlSeconds: 60 })).toThrow(RangeError);
  });
});
