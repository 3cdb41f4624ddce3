import { AGENT_SECRET_KEYS, BOOTSTRAP_PATHS } from '@fleetgraph/schema';
import { stringify } from 'yaml';
import { SEED_IMAGES, SEED_REGION } from './catalog.js';
import { stableId } from './net.js';

/** The id of an out-of-the-box image (the same in every local cloud). */
export function seedImageId(name: string): string {
  return stableId('ami', name);
}

/** The first out-of-the-box image: its id and region. */
export const FIRST_SEED_IMAGE = {
  id: seedImageId(SEED_IMAGES[0]!.name),
  name: SEED_IMAGES[0]!.name,
  region: SEED_REGION,
};

/** A client of the local cloud's admin API (`/_admin/*`), for tests. */
export function localCloudAdmin(url: string) {
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${url}${path}`, {
      method,
      ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    });
    const json = (await response.json()) as T;
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  }
  return {
    quota: (region: string) =>
      call<{ region: string; vcpuLimit: number; vcpuUsed: number }>('GET', `/_admin/quota?region=${region}`),
    setQuota: (vcpuLimit: number, region?: string) =>
      call('POST', '/_admin/quota', { vcpuLimit, ...(region ? { region } : {}) }),
    faults: () => call<Record<string, unknown>>('GET', '/_admin/faults'),
    setFaults: (patch: Record<string, unknown>) => call<Record<string, unknown>>('POST', '/_admin/faults', patch),
    resetFaults: () => call('DELETE', '/_admin/faults'),
  };
}

/** What {@link nodeUserData} writes: a joining node, or the first control-plane node with its agent's Secret. */
export type NodeUserDataInput =
  | { kind: 'join'; nodeName: string }
  | {
      kind: 'init';
      nodeName: string;
      agent: { natsUrl: string; clusterId: string; tenantId: string; natsCredentials?: string };
    };

/**
 * A node's user data in the shape the clusters service writes (services/clusters/src/bootstrap):
 * `#cloud-config` whose `write_files` put a kubeadm configuration at
 * `BOOTSTRAP_PATHS.kubeadmConfig` and, on the first control-plane node, the agent's manifest (with
 * its Secret) at `BOOTSTRAP_PATHS.agentManifest`. Trimmed to what the local cloud reads: for tests.
 */
export function nodeUserData(input: NodeUserDataInput): string {
  const kubeadm = {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: input.kind === 'init' ? 'InitConfiguration' : 'JoinConfiguration',
    nodeRegistration: { name: input.nodeName, criSocket: 'unix:///run/containerd/containerd.sock' },
  };
  const files: { path: string; content: string; permissions: string; owner: string }[] = [
    { path: BOOTSTRAP_PATHS.kubeadmConfig, content: stringify(kubeadm), permissions: '0600', owner: 'root:root' },
  ];
  if (input.kind === 'init') {
    const { agent } = input;
    const metadata = { name: 'fleetgraph-agent', namespace: 'fleetgraph-system' };
    const manifest = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fleetgraph-system' } },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata,
        type: 'Opaque',
        stringData: {
          [AGENT_SECRET_KEYS.natsUrl]: agent.natsUrl,
          [AGENT_SECRET_KEYS.clusterId]: agent.clusterId,
          [AGENT_SECRET_KEYS.tenantId]: agent.tenantId,
          ...(agent.natsCredentials ? { [AGENT_SECRET_KEYS.natsCredentials]: agent.natsCredentials } : {}),
        },
      },
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata, spec: { replicas: 1 } },
    ]
      .map((object) => stringify(object, { lineWidth: 0 }))
      .join('---\n');
    files.push({ path: BOOTSTRAP_PATHS.agentManifest, content: manifest, permissions: '0600', owner: 'root:root' });
  }
  const command = input.kind === 'init' ? 'init' : 'join';
  return `#cloud-config\n${stringify({ write_files: files, runcmd: [['kubeadm', command, '--config', BOOTSTRAP_PATHS.kubeadmConfig]] }, { lineWidth: 0 })}`;
}
