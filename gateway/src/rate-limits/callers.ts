import type { IncomingMessage } from 'node:http';
import { isIP, isIPv4 } from 'node:net';
import type { ErrorCode, Identity, VerifiedBearer } from '@fleetgraph/kit/core';
import type { RequestHandler } from 'express';
import type { GraphQLFormattedError } from 'graphql';
import { sendErrors } from '../graphql-over-http.js';
import type { Admission, CallerKind, RateLimiter } from './limiter.js';

/** Whose bucket a request takes from: a verified caller's, by tenant and subject, or its address's. */
export interface Caller {
  kind: CallerKind;
  id: string;
}

/**
 * The client's address: the socket's peer, or, behind `trustedProxyHops` proxies, the address the
 * outermost trusted one saw, read from the right of `X-Forwarded-For` (what each trusted proxy
 * appended), as Express's numeric `trust proxy` reads it; the peer when that is not an address.
 */
export function clientAddress(request: IncomingMessage, trustedProxyHops: number): string {
  const peer = request.socket.remoteAddress ?? 'unknown';
  if (trustedProxyHops <= 0) return peer;
  const header = request.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((hop) => hop.trim())
    .filter(Boolean);
  const chain = [peer, ...forwarded.reverse()];
  const address = chain[Math.min(trustedProxyHops, chain.length - 1)]!;
  // What a trusted proxy appended is an address; anything else is no client's to choose a bucket by.
  return isIP(address) ? address : peer;
}

/**
 * What an address is limited by: an IPv4 address itself (IPv4-mapped IPv6 included), an IPv6
 * address by its /64 (one host usually holds all of its /64), anything else as it is.
 */
export function addressKey(address: string): string {
  const plain = address.replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(plain);
  if (mapped) return mapped[1]!;
  if (isIPv4(plain) || !plain.includes(':')) return plain;
  const [head = '', tail] = plain.split('::');
  const groups = (part: string) => (part ? part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const all =
    tail === undefined ? front : [...front, ...Array(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back];
  return `${all
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** The caller a request is limited as: its verified identity's subject (in its tenant), else its address's. */
export const callerOf = (identity: Identity | undefined, address: string): Caller =>
  identity
    ? { kind: 'caller', id: `${identity.tenantId}/${identity.userId}` }
    : { kind: 'anonymous', id: addressKey(address) };

/** Takes a token of the bucket of the caller of `identity`, else of `address`. */
export function admitCaller(limiter: RateLimiter, identity: Identity | undefined, address: string): Promise<Admission> {
  const caller = callerOf(identity, address);
  return limiter.admit(caller.kind, caller.id);
}

export const RATE_LIMITED: ErrorCode = 'RATE_LIMITED';

/** The error of a caller over its limit, with the seconds to wait in `extensions.retryAfter`. */
export const rateLimitedError = (retryAfterSeconds: number): GraphQLFormattedError => ({
  message: `Too many requests: retry after ${retryAfterSeconds} s`,
  extensions: { code: RATE_LIMITED, retryAfter: retryAfterSeconds },
});

/** The identity of a bearer `Authorization` value, or undefined when it has none valid. */
export async function identify(
  verify: (authorization: string | undefined) => Promise<VerifiedBearer>,
  authorization: string | undefined,
): Promise<Identity | undefined> {
  try {
    return (await verify(authorization)).identity;
  } catch {
    return undefined;
  }
}

export interface HttpRateLimitOptions {
  limiter: RateLimiter;
  verify(authorization: string | undefined): Promise<VerifiedBearer>;
  trustedProxyHops: number;
}

/**
 * Limits every request it sees, before anything reads its body: by its bearer token's caller, else
 * by its address. Over the limit: 429, `Retry-After`, RATE_LIMITED.
 */
export function rateLimitHttp(options: HttpRateLimitOptions): RequestHandler {
  const { limiter, verify, trustedProxyHops } = options;
  return (req, res, next) => {
    void (async () => {
      const identity = await identify(verify, req.header('authorization'));
      const admission = await admitCaller(limiter, identity, clientAddress(req, trustedProxyHops));
      if (admission.allowed) return next();
      const seconds = admission.retryAfterSeconds;
      sendErrors(req, res, [rateLimitedError(seconds)], 429, { 'retry-after': String(seconds) });
    })().catch(next);
  };
}
