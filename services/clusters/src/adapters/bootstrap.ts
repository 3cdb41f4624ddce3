import { randomBytes } from 'node:crypto';
import { confinedCredentials, type NatsKeys } from '@fleetgraph/kit';
import { agentPermissions } from '@fleetgraph/schema';
import { agentManifest } from '../bootstrap/agent-manifest.js';
import { DEFAULT_NETWORKING, type KubeadmNode } from '../bootstrap/kubeadm.js';
import { caCertHash } from '../bootstrap/pki.js';
import type { Sealer } from '../bootstrap/sealed.js';
import { userData } from '../bootstrap/user-data.js';
import type { NodeBootstrapper, NodeBootstrapRequest } from '../orchestrator/ports.js';
import type { ClusterSecretsRepository } from './cluster-secrets.repo.js';

export interface BootstrapSettings {
  secrets: ClusterSecretsRepository;
  sealer: Sealer;
  /** Where agents reach the platform's NATS. */
  agentNatsUrl: string;
  /** The agent's container image. */
  agentImage: string;
  /**
   * The platform account's key, to mint each agent's NATS credentials; null when NATS has no
   * authentication (agents then get none).
   */
  natsKeys: Pick<NatsKeys, 'accountSeed'> | null;
  /** How long an agent's first credentials hold: long enough for the first node to boot; renewals are shorter. */
  agentBootCredentialsSeconds: number;
  /** How long a bootstrap token holds. */
  bootstrapTokenSeconds: number;
}

const TOKEN_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const tokenPart = (length: number) =>
  Array.from(randomBytes(length), (b) => TOKEN_ALPHABET[b % TOKEN_ALPHABET.length]).join('');

/**
 * Machines' user data from the cluster's own secrets: its PKI (for control-plane nodes), the
 * CA's hash and a bootstrap token (for every joining node), and on the first control-plane node
 * the agent's manifest with credentials minted for that cluster only. Returned sealed.
 */
export class ClusterBootstrap implements NodeBootstrapper {
  constructor(private readonly settings: BootstrapSettings) {}

  async userData(request: NodeBootstrapRequest): Promise<string> {
    const { spec } = request;
    const s = this.settings;
    const pki = await s.secrets.pki(spec.id, spec.tenantId);
    const kubeadm: KubeadmNode = {
      kubernetesVersion: request.kubernetesVersion,
      clusterName: spec.name,
      controlPlaneEndpoint: request.apiEndpoint,
      nodeName: request.machineName,
      labels: { 'fleetgraph.io/pool': request.pool, 'fleetgraph.io/cluster': spec.id },
      bootstrapToken: { token: request.bootstrapToken, ttlSeconds: s.bootstrapTokenSeconds },
      caCertHash: caCertHash(pki.ca.cert),
      ...DEFAULT_NETWORKING,
    };
    const common = { kubeadm, kubernetesPreinstalled: request.kubernetesPreinstalled, proxy: null };
    let text: string;
    if (request.kind === 'init') {
      const credentials = s.natsKeys
        ? (
            await confinedCredentials(
              s.natsKeys,
              {
                name: `agent-${spec.id}`,
                permissions: agentPermissions(spec.id),
                tags: [`cluster:${spec.id}`, `tenant:${spec.tenantId}`],
              },
              s.agentBootCredentialsSeconds,
            )
          ).creds
        : null;
      const manifest = agentManifest({
        clusterId: spec.id,
        tenantId: spec.tenantId,
        natsUrl: s.agentNatsUrl,
        natsCredentials: credentials,
        image: s.agentImage,
      });
      text = userData({ kind: 'init', ...common, pki, agentManifest: manifest });
    } else if (request.kind === 'join-control-plane') {
      text = userData({ kind: 'join-control-plane', ...common, pki });
    } else {
      text = userData({ kind: 'join-worker', ...common });
    }
    return s.sealer.seal(text, spec.id);
  }

  newBootstrapToken(clusterId: string, now: Date): { token: string; sealed: string; expiresAt: string } {
    const token = `${tokenPart(6)}.${tokenPart(16)}`;
    return {
      token,
      sealed: this.settings.sealer.seal(token, clusterId),
      expiresAt: new Date(now.getTime() + this.settings.bootstrapTokenSeconds * 1000).toISOString(),
    };
  }

  open(sealed: string, clusterId: string): string {
    return this.settings.sealer.open(sealed, clusterId);
  }
}
