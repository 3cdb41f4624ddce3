import type { StoredDoc } from '@fleetgraph/kit/store';

/** What the local cloud keeps, one collection per kind; field names follow EC2's. */

export type Tags = Record<string, string>;

export type InstanceStateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

/** EC2's numeric state codes. */
export const INSTANCE_STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export interface InstanceDoc extends StoredDoc {
  region: string;
  zone: string;
  instanceType: string;
  vcpus: number;
  memoryMiB: number;
  imageId: string;
  state: InstanceStateName;
  stateReason?: { code: string; message: string };
  /** ISO-8601. */
  launchTime: string;
  /** When the next state change is due, epoch ms of the cloud's clock; null when none is. */
  dueAt: number | null;
  /** Epoch ms it reached `terminated`. */
  terminatedAt?: number;
  reservationId: string;
  clientToken: string;
  vpcId: string;
  subnetId: string;
  securityGroupIds: string[];
  privateIp: string;
  tags: Tags;
  /** Base64, as RunInstances took it. */
  userData?: string;
}

export type ImageStateName = 'pending' | 'available' | 'failed';

export interface ImageDoc extends StoredDoc {
  region: string;
  name: string;
  description?: string;
  state: ImageStateName;
  stateReason?: { code: string; message: string };
  ownerId: string;
  ownerAlias?: string;
  isPublic: boolean;
  /** ISO-8601. */
  creationDate: string;
  dueAt: number | null;
  tags: Tags;
  source?:
    | { kind: 'copy'; region: string; imageId: string }
    | { kind: 'instance'; instanceId: string }
    | { kind: 'seed' };
}

export interface VpcDoc extends StoredDoc {
  region: string;
  cidr: string;
  isDefault: boolean;
  tags: Tags;
}

export interface SubnetDoc extends StoredDoc {
  region: string;
  vpcId: string;
  cidr: string;
  zone: string;
  isDefault: boolean;
  tags: Tags;
  /** The next host number to hand out as a private address. */
  nextHost: number;
}

/** One inbound rule: a protocol and port range from one source (a group or a CIDR). */
export interface SecurityGroupRule {
  protocol: string;
  fromPort?: number;
  toPort?: number;
  groupId?: string;
  cidr?: string;
  description?: string;
}

export interface SecurityGroupDoc extends StoredDoc {
  region: string;
  vpcId: string;
  name: string;
  description: string;
  rules: SecurityGroupRule[];
  tags: Tags;
}

/** What a ClientToken bought: EC2 answers a repeat with the same resources, or a mismatch. */
export interface IdempotencyDoc extends StoredDoc {
  action: string;
  region: string;
  paramsHash: string;
  resourceIds: string[];
  reservationId?: string;
  createdAt: string;
}

/**
 * A cluster agent's renewed NATS credentials, kept as the real agent keeps them in its Secret,
 * so that the agent restarted with a restarted cloud presents them rather than its boot ones.
 */
export interface AgentCredentialsDoc extends StoredDoc {
  /** The credentials file (user JWT and seed). */
  creds: string;
  updatedAt: string;
}
