/**
 * A cluster's PKI, owned by the control plane (ARCHITECTURE.md, Bootstrap): the Kubernetes CA,
 * the etcd CA, the front-proxy CA and the service-account key pair that kubeadm would otherwise
 * generate on the first control-plane node. Holding them lets the platform join further
 * control-plane nodes, give workers the CA's hash, and sign short-lived client certificates for
 * users' kubeconfigs. Keys are ECDSA P-256 (kubeadm and the API server take them), in PKCS#8 PEM.
 * Built with @peculiar/x509 on Node's WebCrypto; no ASN.1 by hand.
 */
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type KeyPair = webcrypto.CryptoKeyPair;
type Key = webcrypto.CryptoKey;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const CA_YEARS = 10;

/** A certificate and its private key, both PEM. */
export interface CertificateAndKey {
  cert: string;
  key: string;
}

/** Everything kubeadm reads from /etc/kubernetes/pki on a control-plane node. */
export interface ClusterPki {
  /** The Kubernetes CA (`ca.crt`, `ca.key`). */
  ca: CertificateAndKey;
  /** The etcd CA (`etcd/ca.crt`, `etcd/ca.key`). */
  etcdCa: CertificateAndKey;
  /** The front-proxy CA (`front-proxy-ca.crt`, `front-proxy-ca.key`). */
  frontProxyCa: CertificateAndKey;
  /** The service-account signing key pair (`sa.key`, `sa.pub`). */
  serviceAccount: { key: string; pub: string };
}

function pem(label: string, der: ArrayBuffer): string {
  const base64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${base64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

const serial = () => {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // a positive integer
  return bytes.toString('hex');
};

async function newKeys(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as KeyPair;
}

async function exportKey(key: Key): Promise<string> {
  return pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key));
}

async function importKey(keyPem: string): Promise<Key> {
  const der = Buffer.from(keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, true, ['sign']);
}

/** A self-signed CA, valid for ten years from an hour ago (clock skew between nodes). */
async function createCa(commonName: string, now: Date): Promise<CertificateAndKey> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + CA_YEARS * 365 * 24 * 3600_000),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await exportKey(keys.privateKey) };
}

/** Generates a new cluster's CAs and service-account key pair. */
export async function generateClusterPki(now = new Date()): Promise<ClusterPki> {
  const [ca, etcdCa, frontProxyCa, sa] = await Promise.all([
    createCa('kubernetes', now),
    createCa('etcd-ca', now),
    createCa('front-proxy-ca', now),
    newKeys(),
  ]);
  return {
    ca,
    etcdCa,
    frontProxyCa,
    serviceAccount: {
      key: await exportKey(sa.privateKey),
      pub: pem('PUBLIC KEY', await webcrypto.subtle.exportKey('spki', sa.publicKey)),
    },
  };
}

/**
 * The CA's public key hash as `kubeadm join --discovery-token-ca-cert-hash` takes it:
 * `sha256:` and the hex SHA-256 of its DER SubjectPublicKeyInfo.
 */
export function caCertHash(caCertPem: string): string {
  const cert = new x509.X509Certificate(caCertPem);
  return `sha256:${createHash('sha256').update(Buffer.from(cert.publicKey.rawData)).digest('hex')}`;
}

export interface ClientCertificateRequest {
  /** The certificate's CN: the user name the API server sees. */
  commonName: string;
  /** The certificate's O values: the groups the API server sees. */
  organizations: readonly string[];
  /** How long it holds. */
  validityMs: number;
}

/**
 * A client certificate signed by the cluster CA, for a kubeconfig: a fresh key pair, the user
 * in CN and the groups in O, client authentication only, valid from a minute ago (skew) until
 * `validityMs` from now.
 */
export async function issueClientCertificate(
  ca: CertificateAndKey,
  request: ClientCertificateRequest,
  now = new Date(),
): Promise<CertificateAndKey & { notAfter: Date }> {
  const issuer = new x509.X509Certificate(ca.cert);
  const keys = await newKeys();
  const notAfter = new Date(now.getTime() + request.validityMs);
  const escapeDn = (value: string) => value.replace(/([,+"\\<>;=])/g, '\\$1');
  const subject = [`CN=${escapeDn(request.commonName)}`, ...request.organizations.map((o) => `O=${escapeDn(o)}`)].join(
    ', ',
  );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: issuer.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter,
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: await importKey(ca.key),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(issuer, false),
    ],
  });
  return { cert: cert.toString('pem'), key: await exportKey(keys.privateKey), notAfter };
}
