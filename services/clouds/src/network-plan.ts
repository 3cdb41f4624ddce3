import { CloudError } from './errors.js';
import type { CloudType, EnsureNetworkInput, NodeRole } from './provider.js';

/** A subnet to make: for a role, in a zone (or spanning zones when `zone` is null). */
export interface SubnetPlan {
  role: NodeRole;
  zone: string | null;
  cidr: string;
}

/** Who a rule lets in: the nodes of a role (by security group or subnet), or an address range. */
export type RuleSource = { role: NodeRole } | { cidr: string };

/** One inbound rule; `all` means every protocol and port. */
export interface IngressRule {
  description: string;
  protocol: 'tcp' | 'udp' | 'all';
  fromPort?: number;
  toPort?: number;
  source: RuleSource;
}

export const DEFAULT_NETWORK_CIDR = '10.0.0.0/16';
export const KUBE_API_PORT = 6443;
export const NODE_PORT_RANGE = { from: 30000, to: 32767 } as const;
/** Zonal subnets per role fit in a /16 for up to this many zones. */
export const MAX_ZONES = 12;

function prefixOf(cidr: string, cloud: CloudType): string {
  const match = /^(\d{1,3})\.(\d{1,3})\.0\.0\/16$/.exec(cidr);
  if (!match || Number(match[1]) > 255 || Number(match[2]) > 255) {
    throw new CloudError({
      code: 'INVALID_CONFIGURATION',
      message: `cluster network ${cidr} is not a /16 such as 10.0.0.0/16`,
      cloud,
    });
  }
  return `${match[1]}.${match[2]}`;
}

/**
 * The subnets of a cluster network. Zonal clouds (AWS, local): per zone i, control plane
 * `x.y.i.0/24` and workers `x.y.(64+16i).0/20` (4091 addresses). Regional clouds (Azure, where a
 * subnet spans zones): control plane `x.y.0.0/24` and workers `x.y.64.0/18`.
 */
export function planSubnets(cidr: string, zones: readonly string[] | null, cloud: CloudType): SubnetPlan[] {
  const p = prefixOf(cidr, cloud);
  if (zones === null) {
    return [
      { role: 'CONTROL_PLANE', zone: null, cidr: `${p}.0.0/24` },
      { role: 'WORKER', zone: null, cidr: `${p}.64.0/18` },
    ];
  }
  const unique = [...new Set(zones)];
  if (unique.length === 0 || unique.length > MAX_ZONES) {
    throw new CloudError({
      code: 'INVALID_CONFIGURATION',
      message: `a cluster network needs 1 to ${MAX_ZONES} zones, not ${unique.length}`,
      cloud,
    });
  }
  return unique.flatMap((zone, i) => [
    { role: 'CONTROL_PLANE' as const, zone, cidr: `${p}.${i}.0/24` },
    { role: 'WORKER' as const, zone, cidr: `${p}.${64 + 16 * i}.0/20` },
  ]);
}

/**
 * Inbound rules of a role's security group. Control-plane nodes take the Kubernetes API from
 * `apiAllowedCidrs` and everything from cluster nodes (etcd, kubelet, CNI); workers take
 * everything from cluster nodes and NodePorts only from `nodePortAllowedCidrs`. Nothing else gets
 * in: each domain is closed to the outside except for those ports.
 */
export function ingressRules(
  role: NodeRole,
  input: Pick<EnsureNetworkInput, 'apiAllowedCidrs' | 'nodePortAllowedCidrs'>,
): IngressRule[] {
  const fromNodes: IngressRule[] = [
    { description: 'all traffic from control-plane nodes', protocol: 'all', source: { role: 'CONTROL_PLANE' } },
    { description: 'all traffic from worker nodes', protocol: 'all', source: { role: 'WORKER' } },
  ];
  if (role === 'CONTROL_PLANE') {
    return [
      ...fromNodes,
      ...(input.apiAllowedCidrs ?? ['0.0.0.0/0']).map(
        (cidr): IngressRule => ({
          description: 'Kubernetes API',
          protocol: 'tcp',
          fromPort: KUBE_API_PORT,
          toPort: KUBE_API_PORT,
          source: { cidr },
        }),
      ),
    ];
  }
  return [
    ...fromNodes,
    ...(input.nodePortAllowedCidrs ?? []).map(
      (cidr): IngressRule => ({
        description: 'NodePort services',
        protocol: 'tcp',
        fromPort: NODE_PORT_RANGE.from,
        toPort: NODE_PORT_RANGE.to,
        source: { cidr },
      }),
    ),
  ];
}

/** Names of things made for a cluster, derived from its id so that a retry finds them. */
export function networkNames(clusterId: string) {
  const base = `fg-${clusterId}`;
  return {
    network: `${base}-net`,
    securityGroup: (role: NodeRole) => `${base}-${role === 'CONTROL_PLANE' ? 'control-plane' : 'workers'}`,
    subnet: (role: NodeRole, zone: string | null) =>
      `${base}-${role === 'CONTROL_PLANE' ? 'control-plane' : 'workers'}${zone ? `-${zone}` : ''}`,
  };
}
