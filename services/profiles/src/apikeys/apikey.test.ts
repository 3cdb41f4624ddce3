import { formatApiKey, hashApiKeySecret, parseApiKey } from '@fleetgraph/schema';
import { describe, expect, it } from 'vitest';
import { isActive, lastUseDue, newApiKeySecret, secretHashMatches, validateApiKey } from './apikey.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const ID = 'apk_01HZY3T8D6M7Q5W2X9B4C1N0PR';

describe('API key secrets', () => {
  it('should make 256-bit secrets that round-trip through the key text', () => {
    const secrets = new Set(Array.from({ length: 100 }, newApiKeySecret));
    expect(secrets.size).toBe(100);
    for (const secret of secrets) {
      expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
      expect(parseApiKey(formatApiKey(ID, secret))).toEqual({ id: ID, secret });
    }
  });

  it('should refuse texts that are not keys', () => {
    const secret = newApiKeySecret();
    for (const text of [
      '',
      `fgk_${ID}`,
      `fgk_${ID}_`,
      `fgk_${ID}_${secret}x`,
      `fgk_${ID}_${secret.slice(1)}`,
      `FGK_${ID}_${secret}`,
      `fgk_apk_short_${secret}`,
      ` fgk_${ID}_${secret}`,
      'eyJhbGciOiJIUzI1NiJ9.e30.sig',
    ])
      expect(parseApiKey(text), text).toBeNull();
  });

  it('should match a secret by its SHA-256 only, and nothing else', () => {
    const secret = newApiKeySecret();
    const stored = hashApiKeySecret(secret);
    expect(stored).toMatch(/^[0-9a-f]{64}$/);
    expect(stored).not.toContain(secret);
    expect(secretHashMatches(stored, hashApiKeySecret(secret))).toBe(true);
    expect(secretHashMatches(stored, hashApiKeySecret(newApiKeySecret()))).toBe(false);
    expect(secretHashMatches(stored, stored.slice(0, 62))).toBe(false);
    expect(secretHashMatches(stored, '')).toBe(false);
  });
});

describe('API key rules', () => {
  it.each([
    ['a plain key', { name: 'ci', expiresAt: null }, []],
    ['an expiry in the future', { name: 'ci', expiresAt: new Date(NOW.getTime() + 1000) }, []],
    ['an empty name', { name: '  ', expiresAt: null }, ['INVALID_NAME']],
    ['a name too long', { name: 'x'.repeat(101), expiresAt: null }, ['INVALID_NAME']],
    ['a control character', { name: 'ci\n', expiresAt: null }, ['INVALID_NAME']],
    ['an expiry now', { name: 'ci', expiresAt: NOW }, ['INVALID_EXPIRY']],
    ['an expiry past', { name: '', expiresAt: new Date(0) }, ['INVALID_NAME', 'INVALID_EXPIRY']],
  ] as const)('should judge %s', (_what, draft, codes) => {
    const problems = validateApiKey({ projectId: 'p1', role: 'VIEWER', ...draft }, NOW);
    expect(problems.map((p) => p.code)).toEqual(codes);
  });

  it('should be usable until revoked or expired', () => {
    expect(isActive({ revokedAt: null, expiresAt: null }, NOW)).toBe(true);
    expect(isActive({ revokedAt: null, expiresAt: '2026-03-01T12:00:01Z' }, NOW)).toBe(true);
    expect(isActive({ revokedAt: null, expiresAt: '2026-03-01T12:00:00Z' }, NOW)).toBe(false);
    expect(isActive({ revokedAt: '2026-03-01T11:00:00Z', expiresAt: null }, NOW)).toBe(false);
  });

  it('should record a use at most once a minute', () => {
    expect(lastUseDue({ lastUsedAt: null }, NOW)).toBe(true);
    expect(lastUseDue({ lastUsedAt: '2026-03-01T11:59:01Z' }, NOW)).toBe(false);
    expect(lastUseDue({ lastUsedAt: '2026-03-01T11:59:00Z' }, NOW)).toBe(true);
  });
});
