/**
 * The kubeadm API types that kubeadm.ts writes, as strict schemas: every field the kubeadm
 * configuration reference (kubeadm.k8s.io/v1beta3 and v1beta4) gives the kinds and sub-structures
 * written here, and no other, so that a field in the wrong place or of the other version fails.
 * Fields the platform never writes are left out of the deeper structures only where their parent
 * is strict anyway (an unknown field is refused either way). Used by the tests.
 */
import { z } from 'zod';

const duration = z.string().regex(/^(\d+h)?(\d+m)?(\d+(\.\d+)?s)?$/, 'a Go duration such as 4m0s');
const taint = z.strictObject({
  key: z.string(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
  timeAdded: z.string().optional(),
});
const mapArgs = z.record(z.string(), z.string());
const listArgs = z.array(z.strictObject({ name: z.string(), value: z.string() }));

const bootstrapToken = z.strictObject({
  token: z.string().regex(/^[a-z0-9]{6}\.[a-z0-9]{16}$/),
  description: z.string().optional(),
  ttl: duration.optional(),
  expires: z.string().optional(),
  usages: z.array(z.enum(['signing', 'authentication'])).optional(),
  groups: z.array(z.string().regex(/^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$/)).optional(),
});

function nodeRegistration(args: z.ZodType) {
  return z.strictObject({
    name: z.string().optional(),
    criSocket: z.string().optional(),
    taints: z.array(taint).nullable().optional(),
    kubeletExtraArgs: args.optional(),
    ignorePreflightErrors: z.array(z.string()).optional(),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  });
}

const apiEndpoint = z.strictObject({ advertiseAddress: z.string().optional(), bindPort: z.number().int().optional() });
const networking = z.strictObject({
  serviceSubnet: z.string().optional(),
  podSubnet: z.string().optional(),
  dnsDomain: z.string().optional(),
});
const hostPathMount = z.strictObject({
  name: z.string(),
  hostPath: z.string(),
  mountPath: z.string(),
  readOnly: z.boolean().optional(),
  pathType: z.string().optional(),
});

function controlPlaneComponent(args: z.ZodType, extra: z.ZodRawShape = {}) {
  return z.strictObject({ extraArgs: args.optional(), extraVolumes: z.array(hostPathMount).optional(), ...extra });
}

const discovery = (v4: boolean) =>
  z.strictObject({
    bootstrapToken: z
      .strictObject({
        token: z.string(),
        apiServerEndpoint: z.string().optional(),
        caCertHashes: z.array(z.string().regex(/^sha256:[0-9a-f]{64}$/)).optional(),
        unsafeSkipCAVerification: z.boolean().optional(),
      })
      .optional(),
    file: z.strictObject({ kubeConfigPath: z.string() }).optional(),
    tlsBootstrapToken: z.string().optional(),
    ...(v4 ? {} : { timeout: duration.optional() }),
  });

const timeouts = z.strictObject({
  controlPlaneComponentHealthCheck: duration.optional(),
  kubeletHealthCheck: duration.optional(),
  kubernetesAPICall: duration.optional(),
  etcdAPICall: duration.optional(),
  tlsBootstrap: duration.optional(),
  discovery: duration.optional(),
  upgradeManifests: duration.optional(),
});

function kinds(apiVersion: 'kubeadm.k8s.io/v1beta3' | 'kubeadm.k8s.io/v1beta4') {
  const v4 = apiVersion === 'kubeadm.k8s.io/v1beta4';
  const args = v4 ? listArgs : mapArgs;
  return {
    InitConfiguration: z.strictObject({
      apiVersion: z.literal(apiVersion),
      kind: z.literal('InitConfiguration'),
      bootstrapTokens: z.array(bootstrapToken).optional(),
      nodeRegistration: nodeRegistration(args).optional(),
      localAPIEndpoint: apiEndpoint.optional(),
      certificateKey: z.string().optional(),
      skipPhases: z.array(z.string()).optional(),
      patches: z.strictObject({ directory: z.string() }).optional(),
      ...(v4 ? { dryRun: z.boolean().optional(), timeouts: timeouts.optional() } : {}),
    }),
    ClusterConfiguration: z.strictObject({
      apiVersion: z.literal(apiVersion),
      kind: z.literal('ClusterConfiguration'),
      etcd: z.unknown().optional(),
      networking: networking.optional(),
      kubernetesVersion: z
        .string()
        .regex(/^v\d+\.\d+\.\d+/)
        .optional(),
      controlPlaneEndpoint: z.string().optional(),
      apiServer: controlPlaneComponent(args, {
        certSANs: z.array(z.string()).optional(),
        ...(v4 ? {} : { timeoutForControlPlane: duration.optional() }),
      }).optional(),
      controllerManager: controlPlaneComponent(args).optional(),
      scheduler: controlPlaneComponent(args).optional(),
      dns: z
        .strictObject({
          imageRepository: z.string().optional(),
          imageTag: z.string().optional(),
          ...(v4 ? { disabled: z.boolean().optional() } : {}),
        })
        .optional(),
      certificatesDir: z.string().optional(),
      imageRepository: z.string().optional(),
      featureGates: z.record(z.string(), z.boolean()).optional(),
      clusterName: z.string().optional(),
      ...(v4
        ? {
            proxy: z.strictObject({ disabled: z.boolean().optional() }).optional(),
            encryptionAlgorithm: z.enum(['RSA-2048', 'RSA-3072', 'RSA-4096', 'ECDSA-P256', 'ECDSA-P384']).optional(),
            certificateValidityPeriod: duration.optional(),
            caCertificateValidityPeriod: duration.optional(),
          }
        : {}),
    }),
    JoinConfiguration: z.strictObject({
      apiVersion: z.literal(apiVersion),
      kind: z.literal('JoinConfiguration'),
      nodeRegistration: nodeRegistration(args).optional(),
      caCertPath: z.string().optional(),
      discovery: discovery(v4),
      controlPlane: z
        .strictObject({ localAPIEndpoint: apiEndpoint.optional(), certificateKey: z.string().optional() })
        .optional(),
      skipPhases: z.array(z.string()).optional(),
      patches: z.strictObject({ directory: z.string() }).optional(),
      ...(v4 ? { dryRun: z.boolean().optional(), timeouts: timeouts.optional() } : {}),
    }),
  };
}

/** The kinds of each kubeadm API version that the platform writes. */
export const KUBEADM_API = {
  'kubeadm.k8s.io/v1beta3': kinds('kubeadm.k8s.io/v1beta3'),
  'kubeadm.k8s.io/v1beta4': kinds('kubeadm.k8s.io/v1beta4'),
} as const;
