import { BOOTSTRAP_PATHS } from '@fleetgraph/schema';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { bootFailure, readUserData } from './bootstrap.js';
import { nodeUserData } from './testing.js';

const agent = { natsUrl: 'nats://127.0.0.1:4222', clusterId: 'cls-1', tenantId: 't1', natsCredentials: 'creds' };
const cloudConfig = (config: unknown) => `#cloud-config\n${stringify(config)}`;
const kubeadmFile = {
  path: BOOTSTRAP_PATHS.kubeadmConfig,
  content: 'apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\n',
};

describe("reading a node's user data as cloud-init and kubeadm would", () => {
  it("should find the agent's Secret on the first control-plane node, and none on a joining one", () => {
    expect(readUserData(nodeUserData({ kind: 'init', nodeName: 'cp-1', agent }))).toEqual({ ok: true, agent });
    expect(readUserData(nodeUserData({ kind: 'join', nodeName: 'w-1' }))).toEqual({ ok: true, agent: null });
    // Without NATS authentication the Secret holds no credentials.
    const { natsCredentials: _, ...open } = agent;
    expect(readUserData(nodeUserData({ kind: 'init', nodeName: 'cp-1', agent: open }))).toEqual({
      ok: true,
      agent: { ...open, natsCredentials: null },
    });
  });

  it('should decode base64 and gzipped write_files, and a Secret given as data', async () => {
    const { gzipSync } = await import('node:zlib');
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'fleetgraph-agent' },
      data: {
        NATS_URL: Buffer.from(agent.natsUrl).toString('base64'),
        CLUSTER_ID: Buffer.from('cls-1').toString('base64'),
        TENANT_ID: Buffer.from('t1').toString('base64'),
      },
    };
    const text = cloudConfig({
      write_files: [
        {
          path: BOOTSTRAP_PATHS.kubeadmConfig,
          encoding: 'b64',
          content: Buffer.from(kubeadmFile.content).toString('base64'),
        },
        {
          path: BOOTSTRAP_PATHS.agentManifest,
          encoding: 'gz+b64',
          content: gzipSync(stringify(secret)).toString('base64'),
        },
      ],
    });
    expect(readUserData(text)).toEqual({
      ok: true,
      agent: { natsUrl: agent.natsUrl, clusterId: 'cls-1', tenantId: 't1', natsCredentials: null },
    });
  });

  it.each([
    ['no user data', undefined, 'no user data'],
    ['a shell script', '#!/bin/bash\nkubeadm join\n', 'the user data is not #cloud-config'],
    [
      'YAML that does not parse',
      '#cloud-config\nwrite_files: [\n  - path: x\n',
      /^the #cloud-config does not parse as YAML: /,
    ],
    ['a list, not a mapping', '#cloud-config\n- a\n- b\n', 'the #cloud-config is not a mapping'],
    [
      'no kubeadm configuration',
      cloudConfig({ write_files: [{ path: '/etc/motd', content: 'hi' }] }),
      `no kubeadm configuration at ${BOOTSTRAP_PATHS.kubeadmConfig}`,
    ],
    [
      'a kubeadm file without an Init or Join configuration',
      cloudConfig({
        write_files: [{ ...kubeadmFile, content: 'apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n' }],
      }),
      `the kubeadm configuration at ${BOOTSTRAP_PATHS.kubeadmConfig} has no InitConfiguration or JoinConfiguration`,
    ],
    [
      'a kubeadm file that does not parse',
      cloudConfig({ write_files: [{ ...kubeadmFile, content: 'kind: [' }] }),
      new RegExp(`^${BOOTSTRAP_PATHS.kubeadmConfig} does not parse as YAML`),
    ],
    [
      'an agent manifest without a Secret',
      cloudConfig({
        write_files: [
          kubeadmFile,
          { path: BOOTSTRAP_PATHS.agentManifest, content: 'apiVersion: v1\nkind: Namespace\nmetadata: { name: x }\n' },
        ],
      }),
      `the agent manifest at ${BOOTSTRAP_PATHS.agentManifest} has no Secret`,
    ],
    [
      'a Secret without the cluster',
      cloudConfig({
        write_files: [
          kubeadmFile,
          {
            path: BOOTSTRAP_PATHS.agentManifest,
            content: stringify({ apiVersion: 'v1', kind: 'Secret', stringData: { NATS_URL: 'nats://x:4222' } }),
          },
        ],
      }),
      `the agent's Secret in ${BOOTSTRAP_PATHS.agentManifest} lacks CLUSTER_ID, TENANT_ID`,
    ],
  ])('should not make a node of %s', (_what, userData, reason) => {
    const boot = readUserData(userData);
    expect(boot.ok).toBe(false);
    if (!boot.ok) expect(boot.reason).toEqual(typeof reason === 'string' ? reason : expect.stringMatching(reason));
    expect(boot.ok === false && boot.missing).toBe(userData === undefined);
  });

  it("should judge only clusters' machines, and missing user data only when it is required", () => {
    const clusterTags = { 'fleetgraph:cluster': 'cls-1', 'fleetgraph:tenant': 't1' };
    const builderTags = { 'fleetgraph:cluster': 'fleetgraph-image-builder', 'fleetgraph:image-id': 'img-1' };
    expect(bootFailure({ tags: clusterTags }, true)).toBe('no user data');
    expect(bootFailure({ tags: clusterTags }, false)).toBeNull();
    expect(bootFailure({ tags: clusterTags, userData: '#!/bin/bash\n' }, false)).toBe(
      'the user data is not #cloud-config',
    );
    expect(bootFailure({ tags: builderTags, userData: '#!/bin/bash\n' }, true)).toBeNull();
    // A tenant's image builder names a tenant too, and is still no node.
    const tenantBuilderTags = {
      'fleetgraph:cluster': 'fleetgraph-image-builder',
      'fleetgraph:tenant': 't1',
      'fleetgraph:image-id': 'img-1',
    };
    expect(bootFailure({ tags: tenantBuilderTags, userData: '#!/bin/bash\n' }, true)).toBeNull();
    expect(
      bootFailure({ tags: clusterTags, userData: nodeUserData({ kind: 'join', nodeName: 'w' }) }, true),
    ).toBeNull();
  });
});
