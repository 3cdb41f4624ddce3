import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { addressKey, clientAddress } from './callers.js';

const request = (peer: string, forwardedFor?: string) =>
  ({
    socket: { remoteAddress: peer },
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  }) as unknown as IncomingMessage;

describe('who a request is limited as', () => {
  it.each([
    ['the peer, with no trusted proxy', request('10.0.0.9', '1.2.3.4'), 0, '10.0.0.9'],
    ['the address the one trusted proxy saw', request('10.0.0.9', '6.6.6.6, 1.2.3.4'), 1, '1.2.3.4'],
    [
      'the address the outer of two trusted proxies saw',
      request('10.0.0.9', '6.6.6.6, 1.2.3.4, 10.0.0.8'),
      2,
      '1.2.3.4',
    ],
    ['the first address there is, with fewer hops than trusted', request('10.0.0.9', '1.2.3.4'), 3, '1.2.3.4'],
    ['the peer, without X-Forwarded-For', request('10.0.0.9'), 1, '10.0.0.9'],
    ['the peer, when the trusted hop is no address', request('10.0.0.9', 'unknown'), 1, '10.0.0.9'],
  ])('should take %s', (_what, req, hops, expected) => {
    expect(clientAddress(req, hops)).toBe(expected);
  });

  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::6', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('should limit %s as %s', (address, key) => {
    expect(addressKey(address)).toBe(key);
  });
});
