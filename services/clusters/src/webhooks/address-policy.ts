/**
 * Which network addresses a webhook may be delivered to (the SSRF guard): every address except
 * the private, loopback, link-local and other special-purpose ranges, unless an operator allows a
 * range by CIDR (`WEBHOOK_ALLOWED_CIDRS`). IPv6 addresses that carry an IPv4 address (IPv4-mapped
 * `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged
 * by that IPv4 address too, so that `::ffff:10.0.0.1` is as private as `10.0.0.1`. Pure: no I/O.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** A CIDR range: its network bytes (4 or 16) and prefix length. */
export interface Cidr {
  readonly text: string;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Ranges no webhook reaches unless allowed, with what each is, for the refusal's message. */
const REFUSED_RANGES: readonly (readonly [string, string])[] = [
  ['0.0.0.0/8', '"this network"'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared address space (carrier-grade NAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', '6to4 relay anycast'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b:1::/48', 'local-use NAT64'],
  ['100::/64', 'discard-only'],
  ['2001::/32', 'Teredo'],
  ['2001:db8::/32', 'documentation'],
  ['fc00::/7', 'unique local (private)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
];

/** The 4 bytes of a dotted IPv4 address, or null. */
function ipv4Bytes(text: string): Uint8Array | null {
  if (!isIPv4(text)) return null;
  return Uint8Array.from(text.split('.').map(Number));
}

/** Byte `i` (0 past the end: the arrays here always have it). */
const byte = (bytes: Uint8Array, i: number) => bytes[i] ?? 0;

/** The 16 bytes of an IPv6 address (a zone id such as `%eth0` is ignored), or null. */
function ipv6Bytes(text: string): Uint8Array | null {
  const [address = ''] = text.split('%');
  if (!isIPv6(address)) return null;
  let groups = address;
  // A dotted IPv4 tail (`::ffff:10.0.0.1`) becomes its two 16-bit groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(groups);
  const v4 = dotted ? ipv4Bytes(dotted[1] ?? '') : null;
  if (dotted && v4) {
    const group = (i: number) => ((byte(v4, i) << 8) | byte(v4, i + 1)).toString(16);
    groups = `${groups.slice(0, dotted.index)}${group(0)}:${group(2)}`;
  }
  let parts: string[];
  if (groups.includes('::')) {
    const [head, tail] = groups.split('::') as [string, string];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    parts = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  } else parts = groups.split(':');
  const bytes = new Uint8Array(16);
  parts.forEach((part, i) => {
    const value = Number.parseInt(part, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}

/** The bytes of an IPv4 or IPv6 address, or null when it is neither. */
export function addressBytes(text: string): Uint8Array | null {
  return ipv4Bytes(text) ?? ipv6Bytes(text);
}

/** Parses `a.b.c.d/n`, `x:y::/n`, or a bare address (one host). @throws RangeError when malformed */
export function parseCidr(text: string): Cidr {
  const trimmed = text.trim();
  const [address, prefixText, extra] = trimmed.split('/');
  const bytes = address ? addressBytes(address) : null;
  if (!bytes || extra !== undefined) throw new RangeError(`${JSON.stringify(text)} is not a CIDR range`);
  const bits = bytes.length * 8;
  const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (!(prefix >= 0 && prefix <= bits)) throw new RangeError(`${JSON.stringify(text)} has no valid prefix length`);
  return { text: trimmed, bytes, prefix };
}

function contains(cidr: Cidr, bytes: Uint8Array): boolean {
  if (cidr.bytes.length !== bytes.length) return false;
  for (let bit = 0; bit < cidr.prefix; bit += 8) {
    const take = Math.min(8, cidr.prefix - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((byte(cidr.bytes, bit / 8) & mask) !== (byte(bytes, bit / 8) & mask)) return false;
  }
  return true;
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any. */
function embeddedIPv4(bytes: Uint8Array): Uint8Array | null {
  if (bytes.length !== 16) return null;
  const zeroUpTo = (n: number) => bytes.subarray(0, n).every((b) => b === 0);
  // ::ffff:a.b.c.d (mapped)
  if (zeroUpTo(10) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12);
  // ::a.b.c.d (compatible, deprecated), but not :: and ::1 themselves
  if (zeroUpTo(12) && (byte(bytes, 12) | byte(bytes, 13) | byte(bytes, 14)) !== 0) return bytes.slice(12);
  // 64:ff9b::a.b.c.d (NAT64, well-known prefix)
  if (
    bytes[0] === 0 &&
    bytes[1] === 0x64 &&
    bytes[2] === 0xff &&
    bytes[3] === 0x9b &&
    bytes.subarray(4, 12).every((b) => b === 0)
  )
    return bytes.slice(12);
  // 2002:AABB:CCDD::/48 (6to4)
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return bytes.slice(2, 6);
  return null;
}

const formatIPv4 = (bytes: Uint8Array) => [...bytes].join('.');

/** Whether an address may be connected to, and if not, why. */
export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

export interface AddressPolicy {
  /** The ranges an operator allowed (`WEBHOOK_ALLOWED_CIDRS`). */
  readonly allowed: readonly Cidr[];
  /** Judges one IP address (not a host name). */
  check(address: string): AddressVerdict;
}

/**
 * The policy: an address in an allowed range is allowed; else one in a refused range (or carrying
 * an IPv4 address in one) is refused, naming the range; else it is allowed.
 */
export function createAddressPolicy(allowedCidrs: readonly string[] = []): AddressPolicy {
  const allowed = allowedCidrs.map(parseCidr);
  const refused = REFUSED_RANGES.map(([cidr, what]) => ({ cidr: parseCidr(cidr), what }));
  return {
    allowed,
    check(address) {
      const bytes = addressBytes(address);
      if (!bytes) return { allowed: false, reason: `${address} is not an IP address` };
      const v4 = embeddedIPv4(bytes);
      // Allowed ranges match the address as it is, or the IPv4 address an IPv4-mapped one stands for.
      const mapped = v4 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff ? v4 : null;
      if (allowed.some((cidr) => contains(cidr, bytes) || (mapped !== null && contains(cidr, mapped))))
        return { allowed: true };
      for (const candidate of v4 ? [bytes, v4] : [bytes]) {
        const hit = refused.find(({ cidr }) => contains(cidr, candidate));
        if (hit) {
          const shown = candidate === bytes ? address : `${address} (${formatIPv4(candidate)})`;
          return {
            allowed: false,
            reason: `${shown} is in a ${hit.what} range (${hit.cidr.text}) that WEBHOOK_ALLOWED_CIDRS does not allow`,
          };
        }
      }
      return { allowed: true };
    },
  };
}
