import { stringify } from 'yaml';
import { issueClientCertificate, type CertificateAndKey } from './pki.js';

/** The longest a user's kubeconfig holds, and how long by default. */
export const KUBECONFIG_MAX_MINUTES = 24 * 60;
export const KUBECONFIG_DEFAULT_MINUTES = 8 * 60;
/**
 * The longest an API key's kubeconfig holds: Kubernetes cannot revoke a client certificate, so
 * what a key was given outlives the key's revocation by at most this.
 */
export const KUBECONFIG_API_KEY_MAX_MINUTES = 60;

/**
 * The Kubernetes user name of a Fleetgraph user: their id under a prefix of the platform's own,
 * so that no subject an identity provider hands out (`system:kube-controller-manager`, say) can
 * name one of the API server's built-in users and take its rights.
 */
export const kubernetesUser = (userId: string) => `fleetgraph:user:${userId}`;

/**
 * The group a project role has in the cluster (bound by the agent's manifest: admin to
 * cluster-admin, editor to edit).
 */
export const roleGroup = (role: 'admin' | 'editor') => `fleetgraph:${role}`;

export interface KubeconfigRequest {
  clusterName: string;
  /** `host:port` of the API server. */
  apiEndpoint: string;
  /** The Fleetgraph user; the certificate's CN is `kubernetesUser(user)`. */
  user: string;
  role: 'admin' | 'editor';
  validityMinutes: number;
}

/**
 * A kubeconfig for one user: a client certificate signed by the cluster CA (CN the user's
 * Kubernetes name, O the
 * role's group) with a fresh key, valid for `validityMinutes`; the CA for the server's certificate.
 */
export async function issueKubeconfig(
  ca: CertificateAndKey,
  request: KubeconfigRequest,
  now = new Date(),
): Promise<{ kubeconfig: string; expiresAt: Date }> {
  const client = await issueClientCertificate(
    ca,
    {
      commonName: kubernetesUser(request.user),
      organizations: [roleGroup(request.role)],
      validityMs: request.validityMinutes * 60_000,
    },
    now,
  );
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const context = `${request.user}@${request.clusterName}`;
  const kubeconfig = stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: request.clusterName,
          cluster: { server: `https://${request.apiEndpoint}`, 'certificate-authority-data': b64(ca.cert) },
        },
      ],
      users: [
        {
          name: request.user,
          user: { 'client-certificate-data': b64(client.cert), 'client-key-data': b64(client.key) },
        },
      ],
      contexts: [{ name: context, context: { cluster: request.clusterName, user: request.user } }],
      'current-context': context,
    },
    { lineWidth: 0 },
  );
  return { kubeconfig, expiresAt: client.notAfter };
}
