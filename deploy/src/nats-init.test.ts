import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountPublicKey, createBus, createLogger, generateNatsKeys, type NatsKeys } from '@fleetgraph/kit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { NATS_USERS, natsInit } from './nats-init.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgraph-nats-init-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** nats-server run on the written auth.conf, as every node of the Compose and Kubernetes NATS clusters includes it. */
async function natsServerWith(config: string, storeDir: string) {
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', '-1', '-js', '-sd', storeDir, '-c', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${output}`)), 10_000);
    child.once('error', reject);
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const port = Number(/Listening for client connections on [^\s]+:(\d+)/.exec(output)?.[1]);
      if (port && output.includes('Server is ready')) {
        clearTimeout(timer);
        resolve(port);
      }
    });
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => child.once('exit', resolve).kill('SIGINT')),
  };
}

describe('nats-init', () => {
  it('should write the keys, the server configuration and each process credentials, readable by their owner only', async () => {
    const out = tempDir();
    await natsInit({ outDir: out, env: {} });
    const keys = JSON.parse(readFileSync(join(out, 'keys.json'), 'utf8')) as NatsKeys;
    const auth = readFileSync(join(out, 'auth.conf'), 'utf8');
    expect(auth).toMatch(/^operator: ey/m);
    expect(auth).toContain(accountPublicKey(keys));
    expect(readFileSync(join(out, 'account.seed'), 'utf8')).toBe(keys.accountSeed);
    for (const user of NATS_USERS)
      expect(readFileSync(join(out, 'creds', `${user}.creds`), 'utf8')).toContain('BEGIN NATS USER JWT');
    for (const file of ['keys.json', 'auth.conf', 'account.seed', 'creds/gateway.creds'])
      expect(statSync(join(out, file)).mode & 0o777, file).toBe(0o600);
  });

  it('should write the account seed apart when told, and not beside the rest', async () => {
    const out = tempDir();
    const seedFile = join(tempDir(), 'account', 'account.seed');
    // An earlier run wrote it beside the rest: that copy goes.
    await natsInit({ outDir: out, env: {} });
    await natsInit({ outDir: out, accountSeedFile: seedFile, env: {} });
    const keys = JSON.parse(readFileSync(join(out, 'keys.json'), 'utf8')) as NatsKeys;
    expect(readFileSync(seedFile, 'utf8')).toBe(keys.accountSeed);
    expect(statSync(seedFile).mode & 0o777).toBe(0o600);
    expect(() => statSync(join(out, 'account.seed'))).toThrow(/ENOENT/);
  });

  it('should keep the keys and credentials of an earlier run, and keep the keys apart when told', async () => {
    const out = tempDir();
    const keysFile = join(tempDir(), 'keys.json');
    await natsInit({ outDir: out, keysFile, env: {} });
    const creds = readFileSync(join(out, 'creds', 'clusters.creds'), 'utf8');
    const keys = readFileSync(keysFile, 'utf8');
    expect(await natsInit({ outDir: out, keysFile, env: {} })).not.toContainEqual(
      expect.stringMatching(/^credentials/),
    );
    expect(readFileSync(keysFile, 'utf8')).toBe(keys);
    expect(readFileSync(join(out, 'creds', 'clusters.creds'), 'utf8')).toBe(creds);
    expect(() => statSync(join(out, 'keys.json'))).toThrow();
  });

  it('should take the seeds from the environment when all three are set', async () => {
    const given = generateNatsKeys();
    const out = tempDir();
    const env = {
      NATS_OPERATOR_SEED: given.operatorSeed,
      NATS_SYSTEM_ACCOUNT_SEED: given.systemAccountSeed,
      NATS_ACCOUNT_SEED: given.accountSeed,
    };
    await natsInit({ outDir: out, env });
    expect(JSON.parse(readFileSync(join(out, 'keys.json'), 'utf8'))).toEqual(given);
  });

  it('should let each process connect with its credentials to a nats-server including auth.conf, and nobody without', async () => {
    const out = tempDir();
    await natsInit({ outDir: out, env: {} });
    const server = await natsServerWith(join(out, 'auth.conf'), tempDir());
    const log = createLogger('nats-init-test', 'silent');
    try {
      const bus = await createBus({
        url: server.url,
        name: 'gateway',
        log,
        credentials: readFileSync(join(out, 'creds', 'gateway.creds'), 'utf8'),
      });
      await bus.close();
      await expect(createBus({ url: server.url, name: 'anonymous', log })).rejects.toThrow(/Authorization/i);
    } finally {
      await server.stop();
    }
  });
});
