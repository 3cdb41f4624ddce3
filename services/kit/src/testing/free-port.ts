import { createServer } from 'node:net';

/**
 * A TCP port that was free a moment ago (the OS picks it), for a process that must be told its
 * port before it starts. Prefer `port: 0` where the process can report the port it bound.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
