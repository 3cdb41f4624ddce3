import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Destination } from './destination.js';
import { postDelivery } from './sender.js';

/** A receiver on a loopback port; `handle` answers each request. */
async function receiver(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return server;
}
const servers: Server[] = [];
const portOf = (server: Server) => (server.address() as AddressInfo).port;
const to = (url: string): Destination => ({ url: new URL(url), address: '127.0.0.1', family: 4 });

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('sending a webhook delivery', () => {
  it('should POST the body with its headers to the checked address, keeping the URL host as Host', async () => {
    const seen: { host?: string; headers: Record<string, unknown>; body: string }[] = [];
    const server = await receiver((req, res, body) => {
      seen.push({ host: req.headers.host, headers: req.headers, body });
      res.writeHead(204).end();
    });
    // The name is never resolved: the connection goes to the address the policy checked.
    const result = await postDelivery(
      to(`http://hooks.example.com:${portOf(server)}/in?x=1`),
      { 'webhook-id': 'msg_1' },
      '{"a":1}',
    );
    expect(result).toMatchObject({ ok: true, status: 204, error: null });
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(seen).toEqual([
      {
        host: `hooks.example.com:${portOf(server)}`,
        headers: expect.objectContaining({ 'webhook-id': 'msg_1', 'content-type': 'application/json' }),
        body: '{"a":1}',
      },
    ]);
  });

  it('should not follow a redirect, and say where it pointed', async () => {
    let followed = 0;
    const target = await receiver((_req, res) => {
      followed++;
      res.writeHead(200).end();
    });
    const redirecting = await receiver((_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${portOf(target)}/` }).end();
    });
    const result = await postDelivery(to(`http://127.0.0.1:${portOf(redirecting)}/`), {}, '{}');
    expect(result).toMatchObject({ ok: false, status: 302 });
    expect(result.error).toContain('redirects are not followed');
    expect(result.error).toContain(`127.0.0.1:${portOf(target)}`);
    expect(followed).toBe(0);
  });

  it('should give up on an endpoint that does not answer within the timeout', async () => {
    const server = await receiver(() => {
      // never answers
    });
    const result = await postDelivery(to(`http://127.0.0.1:${portOf(server)}/`), {}, '{}', { timeoutMs: 200 });
    expect(result).toMatchObject({ ok: false, status: null });
    expect(result.error).toContain('no answer within 200 ms');
  });

  it("should read no more than the cap of a failing endpoint's answer", async () => {
    const total = 256 * 1024 * 1024;
    let written = 0;
    let closed!: () => void;
    const ended = new Promise<void>((resolve) => (closed = resolve));
    const server = await receiver((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      res.write('oops ');
      // Writes as fast as the client reads, until it hangs up.
      const pump = () => {
        while (written < total && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', closed);
      pump();
    });
    const result = await postDelivery(to(`http://127.0.0.1:${portOf(server)}/`), {}, '{}', { maxResponseBytes: 512 });
    expect(result).toMatchObject({ ok: false, status: 500 });
    expect(result.error).toMatch(/^HTTP 500: oops x+$/);
    expect(result.error!.length).toBeLessThanOrEqual(220);
    await ended;
    // What the sockets' buffers took, and not the rest.
    expect(written).toBeLessThan(total / 4);
  });

  it('should report a refused connection as a failed attempt', async () => {
    const server = await receiver(() => {});
    const port = portOf(server);
    await new Promise((resolve) => server.close(resolve));
    const result = await postDelivery(to(`http://127.0.0.1:${port}/`), {}, '{}');
    expect(result).toMatchObject({ ok: false, status: null });
    expect(result.error).toContain('ECONNREFUSED');
  });
});
