import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Destination } from './destination.js';

/** What one attempt at a delivery got. */
export interface SendResult {
  /** A 2xx answer. */
  ok: boolean;
  /** The HTTP status, null when none came (refused, unreachable, timed out). */
  status: number | null;
  /** From the start of the attempt to the response's status line (or the failure). */
  latencyMs: number;
  /** Why it failed, for the delivery log: the network error, or the status and the start of the body. */
  error: string | null;
}

export interface SendOptions {
  /** The whole attempt, connection included, at most. @default 10000 */
  timeoutMs?: number;
  /** Bytes of the response body read (for the error message); the rest is never read. @default 1024 */
  maxResponseBytes?: number;
}

/** A `lookup` that answers the checked address whatever it is asked, so the connection goes there. */
function pinnedLookup(destination: Destination): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address: destination.address, family: destination.family }]);
    else callback(null, destination.address, destination.family);
  }) as unknown as LookupFunction;
}

const USER_AGENT = 'Fleetgraph-Webhooks/1.0';

/**
 * POSTs a JSON body to a checked destination: to its address (the URL's host is still the Host
 * header and, over https, the name the certificate must carry), following no redirect (a 3xx is a
 * failed attempt), within a timeout, reading at most a small part of the answer.
 */
export function postDelivery(
  destination: Destination,
  headers: Record<string, string>,
  body: string,
  options: SendOptions = {},
): Promise<SendResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxResponseBytes ?? 1024;
  const { url } = destination;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const payload = Buffer.from(body);
  const requestOptions: RequestOptions = {
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port || undefined,
    path: `${url.pathname}${url.search}`,
    headers: {
      ...headers,
      'content-type': 'application/json',
      'content-length': String(payload.length),
      'user-agent': USER_AGENT,
    },
    lookup: pinnedLookup(destination),
    // One connection per attempt: no pool keeps a socket to an address checked long ago.
    agent: false,
  };
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const finish = (result: SendResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(requestOptions);
    const timer = setTimeout(() => {
      request.destroy(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    request.on('error', (error: NodeJS.ErrnoException) => {
      finish({
        ok: false,
        status: null,
        latencyMs: elapsed(),
        error: error.code ? `${error.code}: ${error.message}` : error.message,
      });
    });
    request.on('response', (response: IncomingMessage) => {
      const status = response.statusCode ?? 0;
      const latencyMs = elapsed();
      const ok = status >= 200 && status < 300;
      const chunks: Buffer[] = [];
      let read = 0;
      const done = () => {
        response.destroy();
        request.destroy();
        const text = Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
        const what =
          status >= 300 && status < 400
            ? `HTTP ${status}: redirects are not followed${response.headers.location ? ` (to ${String(response.headers.location).slice(0, 200)})` : ''}`
            : `HTTP ${status}${text ? `: ${text}` : ''}`;
        finish({ ok, status, latencyMs, error: ok ? null : what });
      };
      if (ok) return done();
      response.on('data', (chunk: Buffer) => {
        if (read >= maxBytes) return;
        chunks.push(chunk.subarray(0, maxBytes - read));
        read += chunk.length;
        if (read >= maxBytes) done();
      });
      response.on('end', done);
      response.on('error', done);
    });
    request.end(payload);
  });
}
