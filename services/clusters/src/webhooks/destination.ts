import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { AddressPolicy } from './address-policy.js';

/** The longest webhook URL taken. */
export const MAX_URL_LENGTH = 2048;

/** Why a destination cannot be delivered to: its code is the `userErrors` code `createWebhook` answers. */
export type DestinationErrorCode = 'INVALID_URL' | 'URL_NOT_ALLOWED' | 'URL_UNRESOLVABLE';

export class DestinationError extends Error {
  constructor(
    readonly code: DestinationErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'DestinationError';
  }
}

/** A URL with the one address a delivery connects to, checked against the policy. */
export interface Destination {
  url: URL;
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has (the system resolver, as connections use). */
export type Resolve = (hostname: string) => Promise<{ address: string; family: number }[]>;

export const systemResolve: Resolve = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** Checks what can be checked without the network: an absolute http(s) URL without credentials. */
export function parseWebhookUrl(text: string): URL {
  if (text.length > MAX_URL_LENGTH)
    throw new DestinationError('INVALID_URL', `the URL is longer than ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new DestinationError('INVALID_URL', 'not an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new DestinationError('INVALID_URL', `only http and https URLs are delivered to, not ${url.protocol}`);
  if (url.username || url.password)
    throw new DestinationError(
      'INVALID_URL',
      'the URL may not hold credentials: deliveries are authenticated by their signature',
    );
  if (!url.hostname) throw new DestinationError('INVALID_URL', 'the URL has no host');
  return url;
}

/** The host of a URL as a resolver or `isIP` takes it (IPv6 literals without their brackets). */
const bareHost = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * The address a delivery to `url` connects to: the host itself when it is an IP address, else the
 * first of its resolved addresses that the policy allows. Called at every delivery, so that a
 * name that resolves elsewhere later (DNS rebinding) is judged again; the connection then goes to
 * this address, never resolving the name a second time.
 * @throws DestinationError (URL_NOT_ALLOWED, URL_UNRESOLVABLE)
 */
export async function resolveDestination(
  url: URL,
  policy: AddressPolicy,
  resolve: Resolve = systemResolve,
): Promise<Destination> {
  const host = bareHost(url);
  const literal = isIP(host);
  let candidates: { address: string; family: number }[];
  if (literal) candidates = [{ address: host, family: literal }];
  else {
    try {
      candidates = await resolve(host);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new DestinationError('URL_UNRESOLVABLE', `${host} does not resolve (${code})`, { cause: error });
    }
    if (candidates.length === 0) throw new DestinationError('URL_UNRESOLVABLE', `${host} has no address`);
  }
  let refusal = '';
  for (const { address, family } of candidates) {
    const verdict = policy.check(address);
    if (verdict.allowed) return { url, address, family: family === 6 ? 6 : 4 };
    refusal ||= verdict.reason;
  }
  throw new DestinationError(
    'URL_NOT_ALLOWED',
    literal ? `refused: ${refusal}` : `refused: ${host} resolves to ${refusal}`,
  );
}
