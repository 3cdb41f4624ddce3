import { createServer } from 'node:net';
import { freePort } from '@fleetgraph/kit/testing';

/** Whether nothing listens on `port` of `host` (by binding it for a moment). */
export function isFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The port for an internal process of `pnpm start`: the configured one when the variable is set
 * (taken or not: the process then says so), else the default when it is free, else any free
 * port. On a Debian host with systemd, installing nats-server starts a system service on 4222,
 * which must not keep the platform's own nats-server from starting.
 */
export async function choosePort(
  name: string,
  variable: string,
  configured: string | undefined,
  fallback: number,
): Promise<{ port: number; note?: string }> {
  if (configured) return { port: Number(configured) };
  if (await isFree(fallback)) return { port: fallback };
  const port = await freePort();
  return {
    port,
    note: `${name}: port ${fallback} is taken (by another ${name}, or a system service); using ${port} (set ${variable} to choose)`,
  };
}
