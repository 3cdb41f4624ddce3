import { describe, expect, it } from 'vitest';
import { createAddressPolicy, parseCidr } from './address-policy.js';
import { DestinationError, parseWebhookUrl, resolveDestination, type Resolve } from './destination.js';

describe('the webhook address policy', () => {
  const strict = createAddressPolicy();

  it.each([
    ['10.1.2.3', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.0.10', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['0.0.0.0', '"this network"'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fd12:3456::1', 'unique local'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::10.0.0.1', 'private'],
    ['64:ff9b::192.168.1.1', 'private'],
    ['2002:c0a8:0101::1', 'private'],
    ['2001:db8::1', 'documentation'],
  ])('should refuse %s (%s)', (address, what) => {
    const verdict = strict.check(address);
    expect(verdict.allowed).toBe(false);
    expect(verdict.allowed ? '' : verdict.reason).toContain(what);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8'])(
    'should allow the public address %s',
    (address) => {
      expect(strict.check(address)).toEqual({ allowed: true });
    },
  );

  it('should allow what the operator allows by CIDR, IPv4-mapped forms included, and nothing beside it', () => {
    const policy = createAddressPolicy(['127.0.0.0/8', 'fd00:1::/32', '10.20.0.0/16']);
    for (const address of ['127.0.0.1', '127.9.9.9', '::ffff:127.0.0.1', 'fd00:1::5', '10.20.3.4'])
      expect(policy.check(address), address).toEqual({ allowed: true });
    for (const address of ['::1', '10.21.0.1', '192.168.1.1', 'fd00:2::1', '169.254.169.254'])
      expect(policy.check(address).allowed, address).toBe(false);
  });

  it('should parse CIDR ranges and refuse what is not one', () => {
    expect(parseCidr('10.0.0.0/8')).toMatchObject({ prefix: 8 });
    expect(parseCidr(' ::1 ')).toMatchObject({ prefix: 128 });
    expect(parseCidr('192.168.1.7')).toMatchObject({ prefix: 32 });
    for (const bad of ['10.0.0.0/33', '::/129', 'localhost/8', '10.0.0/8', '10.0.0.0/8/1', '10.0.0.0/x', ''])
      expect(() => parseCidr(bad), bad).toThrow(RangeError);
  });
});

describe('webhook destinations', () => {
  const strict = createAddressPolicy();
  const resolver =
    (answers: Record<string, string[]>): Resolve =>
    async (host) => {
      const addresses = answers[host];
      if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    };

  it.each([
    ['ftp://example.com/hook', 'only http and https'],
    ['file:///etc/passwd', 'only http and https'],
    ['gopher://example.com', 'only http and https'],
    ['https://user:pass@example.com/hook', 'credentials'],
    ['/relative', 'not an absolute URL'],
    [`https://example.com/${'a'.repeat(2100)}`, 'longer than'],
  ])('should refuse the URL %s', (url, message) => {
    expect(() => parseWebhookUrl(url)).toThrow(message);
  });

  it('should connect to the address it checked, and refuse a name that resolves only to private addresses', async () => {
    const resolve = resolver({
      'hooks.example.com': ['93.184.216.34'],
      'rebound.example.com': ['10.0.0.8'],
      'mixed.example.com': ['127.0.0.1', '93.184.216.35'],
    });
    await expect(resolveDestination(new URL('https://hooks.example.com/x'), strict, resolve)).resolves.toMatchObject({
      address: '93.184.216.34',
      family: 4,
    });
    await expect(resolveDestination(new URL('https://mixed.example.com/x'), strict, resolve)).resolves.toMatchObject({
      address: '93.184.216.35',
    });
    const refused = resolveDestination(new URL('http://rebound.example.com/x'), strict, resolve);
    await expect(refused).rejects.toThrow(DestinationError);
    await expect(refused).rejects.toMatchObject({ code: 'URL_NOT_ALLOWED' });
    await expect(refused).rejects.toThrow(
      'rebound.example.com resolves to 10.0.0.8 is in a private range (10.0.0.0/8)',
    );
  });

  it('should judge IP literals without resolving them, IPv6 in brackets included', async () => {
    const resolve: Resolve = async () => {
      throw new Error('no lookup expected');
    };
    await expect(resolveDestination(new URL('http://[::ffff:10.0.0.1]:8080/'), strict, resolve)).rejects.toMatchObject({
      code: 'URL_NOT_ALLOWED',
    });
    await expect(resolveDestination(new URL('http://169.254.169.254/latest'), strict, resolve)).rejects.toThrow(
      'link-local',
    );
    await expect(resolveDestination(new URL('http://[2606:4700::1111]/'), strict, resolve)).resolves.toMatchObject({
      address: '2606:4700::1111',
      family: 6,
    });
  });

  it('should say so when a name does not resolve', async () => {
    await expect(resolveDestination(new URL('https://nowhere.invalid/'), strict, resolver({}))).rejects.toMatchObject({
      code: 'URL_UNRESOLVABLE',
    });
  });
});
