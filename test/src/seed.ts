import type { Claims } from '@fleetgraph/kit';

let counter = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${++counter}`;

/** Small builders of test data: tenants, users with roles, profile inputs. */
export const seed = {
  tenant: () => unique('tenant'),
  project: () => unique('project'),
  /** A user with the given roles in projects of a tenant. */
  user(
    tenantId: string,
    projects: Record<string, 'admin' | 'editor' | 'viewer'> = {},
    extra: Partial<Claims> = {},
  ): Claims {
    return { sub: unique('user'), tenantId, projects, ...extra };
  },
  /** A valid CreateClusterProfileInput, with overrides. */
  profileInput(projectId: string, overrides: Record<string, unknown> = {}) {
    return {
      projectId,
      name: 'web',
      version: '1.0.0',
      description: 'Web tier',
      cloud: 'LOCAL',
      layers: [
        { type: 'OS', name: 'ubuntu', version: '22.04' },
        { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4', values: 'apiServer:\n  auditLog: true\n' },
        { type: 'CNI', name: 'calico', version: '3.28.0' },
        { type: 'ADDON', name: 'prometheus', version: '2.53.0', values: 'retention: 15d\n' },
      ],
      ...overrides,
    };
  },
  /** A valid CreateClusterInput on the local cloud: a t3.medium control plane and `workers` m5.large workers. */
  clusterInput(projectId: string, name: string, profileId: string, workers = 1) {
    return {
      projectId,
      name,
      profileId,
      cloud: { type: 'LOCAL', region: 'local-1' },
      nodePools: [
        { name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
        { name: 'workers', role: 'WORKER', count: workers, instanceType: 'm5.large' },
      ],
    };
  },
};
