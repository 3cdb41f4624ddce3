// The image's HEALTHCHECK: GET /healthz of the process the container runs (slim images have no
// curl; Node has fetch). The process is read from PID 1's command line: the entrypoint's
// `node /app/node_modules/@fleetgraph/<process>/dist/main.js`, or `docker-init -- fleetgraph <process>`
// under `docker run --init`. A process without HTTP (the agent, nats-init) is healthy while it runs.
import { readFileSync } from 'node:fs';

const ports = {
  gateway: 4000,
  profiles: 4001,
  clusters: 4002,
  images: 4003,
  health: 4004,
  logs: 4005,
  'local-cloud': 4566,
};
const args = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
const name = args
  .map((arg) => /^(?:.*\/@fleetgraph\/)?([a-z-]+)(?:\/dist\/main\.js)?$/.exec(arg)?.[1])
  .find((n) => n && Object.hasOwn(ports, n));
if (!name) process.exit(0);

const host = ['', '0.0.0.0', '::'].includes(process.env.HOST ?? '') ? '127.0.0.1' : process.env.HOST;
const port = process.env.PORT || ports[name];
try {
  const response = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}/healthz`, {
    signal: AbortSignal.timeout(3000),
  });
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  console.error(`${name} on port ${port}: ${error.message}`);
  process.exit(1);
}
