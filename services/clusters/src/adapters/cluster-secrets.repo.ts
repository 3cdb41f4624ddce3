import { DuplicateKeyError, write, type Collection, type Store, type StoredDoc, type Write } from '@fleetgraph/kit';
import { generateClusterPki, type ClusterPki } from '../bootstrap/pki.js';
import type { Sealer } from '../bootstrap/sealed.js';

interface SecretsDoc extends StoredDoc {
  tenantId: string;
  /** The cluster's PKI as JSON, sealed for the cluster. */
  pki: string;
}

/**
 * The secrets the control plane holds for each cluster (its CAs and service-account key pair),
 * sealed at rest with the service's key (CLUSTER_SECRETS_KEY): never in a log, an event or an
 * API answer. Kept apart from the status, which every step reads and writes.
 */
export class ClusterSecretsRepository {
  private constructor(
    private readonly docs: Collection<SecretsDoc>,
    private readonly sealer: Sealer,
  ) {}

  static async open(store: Store, sealer: Sealer): Promise<ClusterSecretsRepository> {
    return new ClusterSecretsRepository(
      await store.collection<SecretsDoc>({ name: 'cluster_secrets', indexes: [] }),
      sealer,
    );
  }

  /** A new cluster's secrets, as a write to commit with the cluster. */
  async create(clusterId: string, tenantId: string): Promise<Write> {
    return write.insert(this.docs, await this.newDoc(clusterId, tenantId));
  }

  private async newDoc(clusterId: string, tenantId: string): Promise<Omit<SecretsDoc, 'version'>> {
    return { id: clusterId, tenantId, pki: this.sealer.seal(JSON.stringify(await generateClusterPki()), clusterId) };
  }

  /** The cluster's PKI; made now for a cluster created before the platform held one. */
  async pki(clusterId: string, tenantId: string): Promise<ClusterPki> {
    let doc = await this.docs.get(clusterId);
    if (!doc) {
      try {
        await this.docs.insert(await this.newDoc(clusterId, tenantId));
      } catch (error) {
        if (!(error instanceof DuplicateKeyError)) throw error;
      }
      doc = await this.docs.get(clusterId);
    }
    if (!doc) throw new Error(`no secrets for cluster ${clusterId}`);
    return JSON.parse(this.sealer.open(doc.pki, clusterId)) as ClusterPki;
  }
}
