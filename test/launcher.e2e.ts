import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEV_JWT_SECRET, signBearer } from '@fleetgraph/kit';
import { freePort } from '@fleetgraph/kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));

/** Listens on 127.0.0.1:port when it is free, as a system service would (undefined when taken already). */
function occupy(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server));
  });
}

/**
 * `pnpm start` as a user runs it (node deploy/dist/start.js), on a host where the usual ports of
 * nats-server (4222: Debian's package starts a system service there) and of a subgraph are
 * taken: the launcher takes other ports, and the platform works through the gateway on PORT.
 */
describe('pnpm start with taken ports', () => {
  const squatters: Server[] = [];
  let launcher: ChildProcess;
  let output = '';
  let dataDir: string;
  let gateway: string;

  beforeAll(async () => {
    for (const port of [4222, 4001]) {
      const server = await occupy(port);
      if (server) squatters.push(server);
    }
    dataDir = await mkdtemp(join(tmpdir(), 'fleetgraph-launcher-'));
    const port = await freePort();
    gateway = `http://127.0.0.1:${port}/graphql`;
    const { NATS_URL: _n, NATS_PORT: _p, PROFILES_PORT: _pp, LOCAL_CLOUD_URL: _l, ...env } = process.env;
    launcher = spawn(process.execPath, [join(root, 'deploy/dist/start.js')], {
      env: {
        ...env,
        PORT: String(port),
        DATA_DIR: dataDir,
        LOCAL_CLOUD_SPEED: '1000',
        LOCAL_CLOUD_PORT: String(await freePort()),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    launcher.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    launcher.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 90_000;
    while (!output.includes('Fleetgraph is up')) {
      if (launcher.exitCode !== null)
        throw new Error(`the launcher exited with ${launcher.exitCode}:\n${output.slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`the platform was not up in 90 s:\n${output.slice(-4000)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 120_000);

  afterAll(async () => {
    if (launcher && launcher.exitCode === null) {
      launcher.kill('SIGKILL');
    }
    for (const server of squatters) server.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('should start on other ports, say so, serve the API on PORT, and stop everything on Ctrl-C', async () => {
    if (squatters.some((s) => (s.address() as { port: number }).port === 4222))
      expect(output).toMatch(/nats-server: port 4222 is taken .* using \d+/);
    expect(output).toMatch(/profiles: port 4001 is taken .* using \d+|Fleetgraph is up/);
    expect(output).toContain(`Fleetgraph is up: http://localhost:${new URL(gateway).port}/graphql`);

    const token = await signBearer({ sub: 'u1', tenantId: 'acme', projects: { web: 'admin' } }, DEV_JWT_SECRET, '10m');
    const call = async (query: string) => {
      const response = await fetch(gateway, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query }),
      });
      return (await response.json()) as { data?: any; errors?: unknown };
    };
    const created = await call(
      'mutation { createClusterProfile(input: { projectId: "web", name: "base", version: "1.0.0", layers: [ { type: OS, name: "ubuntu", version: "22.04" }, { type: KUBERNETES, name: "kubernetes", version: "1.30.4" }, { type: CNI, name: "calico", version: "3.28.0" } ] }) { profile { id } userErrors { code } } }',
    );
    expect(created.errors).toBeUndefined();
    expect(created.data.createClusterProfile.userErrors).toEqual([]);
    const listed = await call('{ clusterProfiles(projectId: "web") { nodes { name version } } }');
    expect(listed.data.clusterProfiles.nodes).toEqual([{ name: 'base', version: '1.0.0' }]);

    const exited = new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code)));
    launcher.kill('SIGINT');
    expect(await exited).toBe(0);
    await expect(fetch(gateway)).rejects.toThrow();
  }, 60_000);
});
