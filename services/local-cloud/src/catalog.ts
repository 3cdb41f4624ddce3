/**
 * What the local cloud offers: its regions and zones, AWS's instance type names and sizes, and
 * the out-of-the-box images it publishes. Pure data.
 */

/** The account every caller of the local cloud is (`self`). */
export const ACCOUNT_ID = '000000000000';

/** The publisher of the out-of-the-box images, as Amazon (`amazon`) publishes its own. */
export const PUBLISHER = { ownerId: '100000000001', alias: 'fleetgraph' } as const;

export const REGIONS = ['local-1', 'local-2'] as const;
export type RegionName = (typeof REGIONS)[number];

export function isRegion(name: string): name is RegionName {
  return (REGIONS as readonly string[]).includes(name);
}

/** `local-1a`, `local-1b`, `local-1c`. */
export function zonesOf(region: string): string[] {
  return ['a', 'b', 'c'].map((suffix) => `${region}${suffix}`);
}

/** EC2's zone ids (`use1-az1`) are stable aliases of zone names; the local cloud's read `lcl1-az1`. */
export function zoneIdOf(zone: string): string {
  const match = /^local-(\d+)([a-z])$/.exec(zone);
  return match ? `lcl${match[1]}-az${match[2]!.charCodeAt(0) - 96}` : zone;
}

export interface InstanceTypeSpec {
  name: string;
  vcpus: number;
  memoryMiB: number;
}

/** AWS's names and sizes (https://aws.amazon.com/ec2/instance-types/). */
export const INSTANCE_TYPES: readonly InstanceTypeSpec[] = [
  { name: 't3.small', vcpus: 2, memoryMiB: 2048 },
  { name: 't3.medium', vcpus: 2, memoryMiB: 4096 },
  { name: 't3.large', vcpus: 2, memoryMiB: 8192 },
  { name: 't3.xlarge', vcpus: 4, memoryMiB: 16384 },
  { name: 't3.2xlarge', vcpus: 8, memoryMiB: 32768 },
  { name: 'm5.large', vcpus: 2, memoryMiB: 8192 },
  { name: 'm5.xlarge', vcpus: 4, memoryMiB: 16384 },
  { name: 'm5.2xlarge', vcpus: 8, memoryMiB: 32768 },
  { name: 'm5.4xlarge', vcpus: 16, memoryMiB: 65536 },
  { name: 'c5.large', vcpus: 2, memoryMiB: 4096 },
  { name: 'c5.xlarge', vcpus: 4, memoryMiB: 8192 },
  { name: 'c5.2xlarge', vcpus: 8, memoryMiB: 16384 },
  { name: 'r5.large', vcpus: 2, memoryMiB: 16384 },
  { name: 'r5.xlarge', vcpus: 4, memoryMiB: 32768 },
];

export function instanceType(name: string): InstanceTypeSpec | undefined {
  return INSTANCE_TYPES.find((t) => t.name === name);
}

/** The keys of the tags that describe an out-of-the-box image. */
export const ImageTagKeys = {
  os: 'fleetgraph:os',
  osVersion: 'fleetgraph:os-version',
  kubernetesVersion: 'fleetgraph:kubernetes-version',
  hardening: 'fleetgraph:hardening',
} as const;

export interface SeedImage {
  name: string;
  description: string;
  tags: Record<string, string>;
}

const UBUNTU = [
  { version: '22.04', codename: 'jammy' },
  { version: '24.04', codename: 'noble' },
] as const;

/** One patch release per minor: what `kubeadm` would install today for that minor. */
export const KUBERNETES_VERSIONS = ['1.29.15', '1.30.14', '1.31.10'] as const;

/**
 * The published images: Ubuntu 22.04 and 24.04 with Kubernetes 1.29, 1.30 and 1.31, hardened to
 * the CIS benchmark. They live in local-1 only, so that using them in local-2 takes a copy.
 */
export const SEED_REGION: RegionName = 'local-1';
export const SEED_IMAGES: readonly SeedImage[] = UBUNTU.flatMap((os) =>
  KUBERNETES_VERSIONS.map(
    (k8s): SeedImage => ({
      name: `fleetgraph/ubuntu-${os.version}-kubernetes-${k8s}-cis-amd64`,
      description:
        `Ubuntu ${os.version} LTS (${os.codename}) with Kubernetes ${k8s} (kubeadm, kubelet, kubectl, containerd), ` +
        `hardened to the CIS Ubuntu Linux ${os.version} LTS Benchmark, Level 1 - Server`,
      tags: {
        [ImageTagKeys.os]: 'ubuntu',
        [ImageTagKeys.osVersion]: os.version,
        [ImageTagKeys.kubernetesVersion]: k8s,
        [ImageTagKeys.hardening]: 'cis-level-1',
      },
    }),
  ),
);

/** Realistic durations, in seconds of cloud time, before the speed factor divides them. */
export const DURATIONS = {
  /** pending -> running. */
  boot: [40, 90],
  /** shutting-down -> terminated. */
  shutdown: [20, 45],
  /** CopyImage: pending -> available. */
  imageCopy: [180, 420],
  /** CreateImage: pending -> available. */
  imageCreate: [150, 330],
} as const satisfies Record<string, readonly [number, number]>;

/** How long terminated instances stay visible to DescribeInstances, as in EC2 (about an hour). */
export const TERMINATED_VISIBLE_SECONDS = 3600;
