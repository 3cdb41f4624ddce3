import { ConfigError, confinedCredentials, generateNatsKeys } from '@fleetgraph/kit/core';
import { agentPermissions } from '@fleetgraph/schema';
import { describe, expect, it } from 'vitest';
import { loadAgentEnv } from './env.js';

const secret = { NATS_URL: 'tls://nats.example.com:4222', CLUSTER_ID: 'cls_01J9Z', TENANT_ID: 'acme' };

function problemsOf(env: NodeJS.ProcessEnv, now?: Date): string[] {
  try {
    loadAgentEnv(env, now);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  throw new Error('the environment was accepted');
}

describe("the agent's environment", () => {
  it('should take its Secret with defaults for the rest, and its credentials', async () => {
    const minted = await confinedCredentials(
      generateNatsKeys(),
      { name: 'agent-cls_01J9Z', permissions: agentPermissions('cls_01J9Z') },
      600,
    );
    expect(loadAgentEnv({ ...secret, NATS_CREDENTIALS: minted.creds })).toEqual({
      natsUrl: 'tls://nats.example.com:4222',
      clusterId: 'cls_01J9Z',
      tenantId: 'acme',
      credentials: minted.creds,
      source: 'kubernetes',
      logLevel: 'info',
      reportIntervalMs: 30_000,
      credentialsSecret: 'fleetgraph-agent',
    });
    expect(loadAgentEnv({ ...secret, AGENT_SOURCE: 'simulated', AGENT_CREDENTIALS_SECRET: 'none' })).toMatchObject({
      credentials: undefined,
      source: 'simulated',
      credentialsSecret: null,
    });
  });

  it('should fail naming every bad or missing variable at once', () => {
    const problems = problemsOf({
      NATS_URL: 'http://nats:4222',
      CLUSTER_ID: 'a.b',
      AGENT_SOURCE: 'docker',
      AGENT_REPORT_INTERVAL_MS: '5',
    });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'AGENT_REPORT_INTERVAL_MS',
      'AGENT_SOURCE',
      'CLUSTER_ID',
      'NATS_URL',
      'TENANT_ID',
    ]);
  });

  it('should refuse credentials that are not a credentials file, are unreadable, or expired already', async () => {
    expect(problemsOf({ ...secret, NATS_CREDENTIALS: 'changeme' })).toEqual([
      'NATS_CREDENTIALS: not a NATS credentials file: expected a user JWT and a seed',
    ]);
    expect(problemsOf({ ...secret, NATS_CREDENTIALS_FILE: '/nonexistent/agent.creds' })).toEqual([
      expect.stringMatching(/^NATS_CREDENTIALS_FILE: ENOENT/),
    ]);
    const minted = await confinedCredentials(
      generateNatsKeys(),
      { name: 'agent-cls_01J9Z', permissions: agentPermissions('cls_01J9Z') },
      60,
    );
    expect(
      problemsOf({ ...secret, NATS_CREDENTIALS: minted.creds }, new Date(minted.expiresAt.getTime() + 1000)),
    ).toEqual([
      `NATS_CREDENTIALS: the user JWT expired at ${minted.expiresAt.toISOString()}; ask the platform for new credentials`,
    ]);
  });
});
