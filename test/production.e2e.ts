import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));
const mains = {
  gateway: 'gateway/dist/main.js',
  profiles: 'services/profiles/dist/main.js',
  clusters: 'services/clusters/dist/main.js',
  images: 'services/images/dist/main.js',
  health: 'services/health/dist/main.js',
  logs: 'services/logs/dist/main.js',
};

/** Runs a built process until it exits on its own; its exit code and stderr. */
function run(main: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Only what is given: no development secret or credential inherited from the test's environment.
    const child = spawn(process.execPath, [`${root}${main}`], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${main} did not exit: it started with an unsafe configuration\n${stderr}`));
    }, 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('a production start refuses to be unsafe', () => {
  it.each(Object.entries(mains))(
    '%s: exits non-zero naming each variable left at a development default or missing',
    async (name, main) => {
      const { code, stderr } = await run(main, { NODE_ENV: 'production', PORT: '0', DATA_DIR: '/nonexistent' });
      expect(code).not.toBe(0);
      const named = stderr.split('\n').flatMap((line) => /^\s+- ([A-Z_]+)(?: or [A-Z_]+)?: /.exec(line)?.[1] ?? []);
      expect(named).toEqual(expect.arrayContaining(['INTERNAL_AUTH_SECRET', 'NATS_CREDENTIALS']));
      const expected: Record<string, string[]> = {
        gateway: ['AUTH_JWT_SECRET', 'PUBLIC_URL'],
        clusters: ['CLUSTER_SECRETS_KEY', 'PUBLIC_URL', 'NATS_ACCOUNT_SEED', 'AGENT_NATS_URL'],
        logs: ['LOGS_DOWNLOAD_SECRET', 'PUBLIC_URL'],
      };
      expect(named).toEqual(expect.arrayContaining(expected[name] ?? []));
    },
  );

  it('starts past its configuration once every secret is its own', async () => {
    // A safe configuration gets past the checks: the process then fails on NATS, unreachable here, not on its settings.
    const { code, stderr } = await run(mains.profiles, {
      NODE_ENV: 'production',
      PORT: '0',
      DATA_DIR: '/tmp',
      INTERNAL_AUTH_SECRET: 'x'.repeat(40),
      NATS_URL: 'nats://127.0.0.1:1',
      NATS_CREDENTIALS_FILE: '/nonexistent/profiles.creds',
    });
    expect(code).not.toBe(0);
    expect(stderr).not.toMatch(/invalid configuration/);
  });

  describe('the gateway signing in through the identity provider only', () => {
    const oidcOnly = {
      NODE_ENV: 'production',
      PORT: '0',
      INTERNAL_AUTH_SECRET: 'x'.repeat(40),
      PUBLIC_URL: 'https://fleet.example.com/graphql',
      NATS_URL: 'nats://127.0.0.1:1',
      NATS_CREDENTIALS_FILE: '/nonexistent/gateway.creds',
      AUTH_JWKS_URL: 'https://login.example.com/.well-known/jwks.json',
      AUTH_ISSUER: 'https://login.example.com/',
      AUTH_AUDIENCE: 'fleetgraph',
    };

    it('starts past its configuration without AUTH_JWT_SECRET', async () => {
      const { code, stderr } = await run(mains.gateway, oidcOnly);
      expect(code).not.toBe(0);
      expect(stderr).not.toMatch(/invalid configuration/);
    });

    it('refuses the development secret beside it, a JWKS over plain HTTP, and a provider without issuer or audience', async () => {
      const { stderr } = await run(mains.gateway, {
        ...oidcOnly,
        AUTH_JWT_SECRET: 'fleetgraph-dev-jwt-secret-change-me',
      });
      expect(stderr).toMatch(/AUTH_JWT_SECRET: is the public development default/);
      const plain = await run(mains.gateway, {
        ...oidcOnly,
        AUTH_JWKS_URL: 'http://login.example.com/jwks.json',
        AUTH_ISSUER: '',
        AUTH_AUDIENCE: '',
      });
      expect(plain.code).not.toBe(0);
      const named = plain.stderr.split('\n').flatMap((line) => /^\s+- ([A-Z_]+): /.exec(line)?.[1] ?? []);
      expect(named).toEqual(['AUTH_ISSUER', 'AUTH_AUDIENCE', 'AUTH_JWKS_URL']);
    });
  });
});
