import type { CloudType, NodeRole } from '@fleetgraph/schema';

export interface NodePool {
  name: string;
  role: NodeRole;
  count: number;
  instanceType: string;
  availabilityZones: string[];
}

export interface CloudConfig {
  type: CloudType;
  region: string;
  credentialRef: string | null;
}

/** What the user asked for. Every change increments `generation`. */
export interface ClusterSpec {
  id: string;
  tenantId: string;
  projectId: string;
  name: string;
  profileId: string;
  cloud: CloudConfig;
  nodePools: NodePool[];
  generation: number;
  deletionRequested: boolean;
  createdAt: string;
}

export const LIMITS = {
  /** Most nodes in one worker pool. */
  workerPoolMax: 100,
  pools: 20,
  controlPlaneCounts: [1, 3, 5] as readonly number[],
} as const;

export interface Problem {
  field: (string | number)[];
  code: string;
  message: string;
}

/** What the cloud offers in a region, for validation. */
export interface CloudOffer {
  zones: readonly string[];
  instanceTypes: ReadonlySet<string>;
}

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Checks one pool against the cloud's offer; `at` is the path of the pool in the input. */
export function validatePool(pool: NodePool, offer: CloudOffer, at: (string | number)[]): Problem[] {
  const problems: Problem[] = [];
  const add = (field: string, code: string, message: string) => problems.push({ field: [...at, field], code, message });
  if (!NAME.test(pool.name)) add('name', 'INVALID_NAME', 'pool name must be 1-63 lowercase letters, digits or "-"');
  if (!Number.isInteger(pool.count) || pool.count < 0)
    add('count', 'INVALID_COUNT', 'count must be a whole number, 0 or more');
  else if (pool.role === 'CONTROL_PLANE' && !LIMITS.controlPlaneCounts.includes(pool.count)) {
    add('count', 'INVALID_CONTROL_PLANE_COUNT', `a control plane has 1, 3 or 5 nodes, not ${pool.count}`);
  } else if (pool.role === 'WORKER' && pool.count > LIMITS.workerPoolMax) {
    add('count', 'POOL_TOO_LARGE', `a worker pool has at most ${LIMITS.workerPoolMax} nodes`);
  }
  if (!offer.instanceTypes.has(pool.instanceType))
    add('instanceType', 'INVALID_INSTANCE_TYPE', `instance type ${pool.instanceType} is not offered in this region`);
  if (pool.availabilityZones.length === 0)
    add('availabilityZones', 'INVALID_ZONE', 'a pool needs at least one availability zone');
  const unknown = pool.availabilityZones.filter((z) => !offer.zones.includes(z));
  if (unknown.length)
    add(
      'availabilityZones',
      'INVALID_ZONE',
      `zone ${unknown.join(', ')} is not in this region (zones: ${offer.zones.join(', ')})`,
    );
  if (new Set(pool.availabilityZones).size !== pool.availabilityZones.length)
    add('availabilityZones', 'INVALID_ZONE', 'a zone is listed twice');
  return problems;
}

/** Checks the whole set of pools: names unique, exactly one control-plane pool. */
export function validatePools(
  pools: readonly NodePool[],
  offer: CloudOffer,
  at: (string | number)[] = ['input', 'nodePools'],
): Problem[] {
  const problems = pools.flatMap((p, i) => validatePool(p, offer, [...at, i]));
  if (pools.length > LIMITS.pools)
    problems.push({ field: at, code: 'TOO_MANY_POOLS', message: `a cluster has at most ${LIMITS.pools} pools` });
  const controlPlanes = pools.filter((p) => p.role === 'CONTROL_PLANE').length;
  if (controlPlanes !== 1)
    problems.push({
      field: at,
      code: 'INVALID_CONTROL_PLANE',
      message: `a cluster has exactly one control-plane pool, not ${controlPlanes}`,
    });
  const seen = new Set<string>();
  pools.forEach((p, i) => {
    if (seen.has(p.name))
      problems.push({
        field: [...at, i, 'name'],
        code: 'DUPLICATE_POOL',
        message: `pool name ${p.name} is used twice`,
      });
    seen.add(p.name);
  });
  return problems;
}

export function validateClusterName(name: string): Problem[] {
  return NAME.test(name)
    ? []
    : [
        {
          field: ['input', 'name'],
          code: 'INVALID_NAME',
          message: 'cluster name must be 1-63 lowercase letters, digits or "-"',
        },
      ];
}
