/**
 * The out-of-the-box catalogue: which operating systems and Kubernetes minors Fleetgraph ships
 * images for, and how a cloud image is recognised as one of them. Pure data and functions.
 */

/** The tenant that owns the out-of-the-box catalogue; no real tenant may use this id. */
export const PUBLIC_TENANT = 'public';

/** Operating systems and versions of the catalogue. */
export const OPERATING_SYSTEMS = {
  ubuntu: {
    displayName: 'Ubuntu',
    versions: {
      '22.04': { codename: 'jammy' },
      '24.04': { codename: 'noble' },
    },
  },
} as const satisfies Record<string, { displayName: string; versions: Record<string, { codename: string }> }>;

export type OsName = keyof typeof OPERATING_SYSTEMS;

/** Kubernetes minors of the catalogue; any patch release of one resolves to its image. */
export const KUBERNETES_MINORS = ['1.29', '1.30', '1.31'] as const;
export type KubernetesMinor = (typeof KUBERNETES_MINORS)[number];

/** One out-of-the-box image: an OS version with a Kubernetes minor, hardened to the CIS benchmark. */
export interface CatalogueEntry {
  /** Stable key, e.g. `ubuntu-22.04-k8s-1.30`: what cloud catalogue configuration maps to image ids. */
  key: string;
  os: OsName;
  osVersion: string;
  kubernetesMinor: KubernetesMinor;
  description: string;
}

export const catalogueKey = (os: string, osVersion: string, minor: string) => `${os}-${osVersion}-k8s-${minor}`;

function describeEntry(os: OsName, osVersion: string, minor: string): string {
  const { displayName, versions } = OPERATING_SYSTEMS[os];
  const codename = (versions as Record<string, { codename: string }>)[osVersion]?.codename;
  return (
    `${displayName} ${osVersion} LTS${codename ? ` (${codename})` : ''} with Kubernetes ${minor} ` +
    '(kubeadm, kubelet, kubectl, containerd), ' +
    `security-hardened to the CIS ${displayName} Linux ${osVersion} LTS Benchmark, Level 1 - Server`
  );
}

/** Every out-of-the-box image, in display order. */
export const CATALOGUE: readonly CatalogueEntry[] = (Object.keys(OPERATING_SYSTEMS) as OsName[]).flatMap((os) =>
  Object.keys(OPERATING_SYSTEMS[os].versions).flatMap((osVersion) =>
    KUBERNETES_MINORS.map((kubernetesMinor) => ({
      key: catalogueKey(os, osVersion, kubernetesMinor),
      os,
      osVersion,
      kubernetesMinor,
      description: describeEntry(os, osVersion, kubernetesMinor),
    })),
  ),
);

const VERSION = /^v?(\d{1,3})\.(\d{1,3})(?:\.(\d{1,5}))?(?:[-+][0-9A-Za-z.+-]*)?$/;

/** `1.30` of `1.30.4` (also `v1.30.4`, `1.30`, `1.30.4-rc.1`); null when it is not a version. */
export function kubernetesMinorOf(version: string): string | null {
  const match = VERSION.exec(version.trim());
  return match ? `${Number(match[1])}.${Number(match[2])}` : null;
}

export function isKnownOs(name: string): name is OsName {
  return Object.hasOwn(OPERATING_SYSTEMS, name);
}

export type Lookup<T> = { ok: true; value: T } | { ok: false; problem: string };

/** Checks a Kubernetes version against the catalogue's minors. */
export function supportedKubernetes(version: string): Lookup<KubernetesMinor> {
  const minor = kubernetesMinorOf(version);
  if (!minor)
    return { ok: false, problem: `Kubernetes version "${version.slice(0, 64)}" is not a version such as 1.30.4` };
  if (!(KUBERNETES_MINORS as readonly string[]).includes(minor)) {
    return {
      ok: false,
      problem: `Kubernetes ${minor} is not supported: the catalogue has ${KUBERNETES_MINORS.join(', ')}`,
    };
  }
  return { ok: true, value: minor as KubernetesMinor };
}

/** Checks an OS name (not its version). */
export function knownOs(name: string): Lookup<OsName> {
  if (isKnownOs(name)) return { ok: true, value: name };
  return {
    ok: false,
    problem: `unknown OS "${name.slice(0, 64)}": the catalogue has ${Object.keys(OPERATING_SYSTEMS).join(', ')}`,
  };
}

/** The out-of-the-box image for an OS version and a Kubernetes version (any patch of a catalogue minor). */
export function findCatalogueEntry(os: string, osVersion: string, kubernetesVersion: string): Lookup<CatalogueEntry> {
  const name = knownOs(os);
  if (!name.ok) return name;
  const versions = Object.keys(OPERATING_SYSTEMS[name.value].versions);
  if (!versions.includes(osVersion)) {
    return {
      ok: false,
      problem: `${os} ${osVersion.slice(0, 32)} is not in the catalogue: it has ${os} ${versions.join(', ')}`,
    };
  }
  const minor = supportedKubernetes(kubernetesVersion);
  if (!minor.ok) return minor;
  return {
    ok: true,
    value: CATALOGUE.find((e) => e.os === os && e.osVersion === osVersion && e.kubernetesMinor === minor.value)!,
  };
}

/**
 * Tags on cloud images. The first four are how a cloud's published out-of-the-box images
 * describe themselves (the local cloud seeds its images so); the others mark what the images
 * service made.
 */
export const ImageTagKeys = {
  os: 'fleetgraph:os',
  osVersion: 'fleetgraph:os-version',
  kubernetesVersion: 'fleetgraph:kubernetes-version',
  hardening: 'fleetgraph:hardening',
  catalogue: 'fleetgraph:catalogue',
  imageId: 'fleetgraph:image-id',
  signature: 'fleetgraph:signature',
  tenant: 'fleetgraph:tenant',
} as const;

/** The tags to search a region for an entry's images with (its Kubernetes minor is checked after). */
export const catalogueSearchTags = (entry: CatalogueEntry) => ({
  [ImageTagKeys.os]: entry.os,
  [ImageTagKeys.osVersion]: entry.osVersion,
});

/** What the catalogue needs of a cloud image. */
export interface CloudImageLike {
  id: string;
  status: 'pending' | 'available' | 'failed';
  tags: Record<string, string>;
  createdAt?: string;
}

function patchOf(version: string | undefined): number {
  return Number(/^\d+\.\d+\.(\d+)/.exec(version ?? '')?.[1] ?? -1);
}

/**
 * The cloud image that is the entry's out-of-the-box image, among images found in a region:
 * tagged with the entry's OS, OS version and a Kubernetes version of its minor, not a
 * customised image (those carry a signature). An available one is preferred to a pending one,
 * then the newest Kubernetes patch, then the newest image. Failed images never match.
 */
export function pickCatalogueImage<T extends CloudImageLike>(entry: CatalogueEntry, images: readonly T[]): T | null {
  const rank = (i: T) => (i.status === 'available' ? 1 : 0);
  const candidates = images.filter(
    (i) =>
      i.status !== 'failed' &&
      i.tags[ImageTagKeys.os] === entry.os &&
      i.tags[ImageTagKeys.osVersion] === entry.osVersion &&
      kubernetesMinorOf(i.tags[ImageTagKeys.kubernetesVersion] ?? '') === entry.kubernetesMinor &&
      i.tags[ImageTagKeys.signature] === undefined,
  );
  candidates.sort(
    (a, b) =>
      rank(b) - rank(a) ||
      patchOf(b.tags[ImageTagKeys.kubernetesVersion]) - patchOf(a.tags[ImageTagKeys.kubernetesVersion]) ||
      (b.createdAt ?? '').localeCompare(a.createdAt ?? '') ||
      a.id.localeCompare(b.id),
  );
  return candidates[0] ?? null;
}

/**
 * A cloud's catalogue configuration (AWS, Azure): per entry key, the image id in each region
 * where it is published, e.g. `{ "ubuntu-22.04-k8s-1.30": { "us-east-1": "ami-0abc..." } }`.
 */
export type ConfiguredCatalogue = Readonly<Record<string, Readonly<Record<string, string>>>>;

export type ConfiguredImage =
  | { kind: 'present'; imageId: string }
  | { kind: 'copy'; sourceRegion: string; sourceImageId: string }
  | { kind: 'missing' };

/**
 * Where an entry's image comes from in a region under a configured catalogue: there already, or
 * copied from the first region listed.
 */
export function configuredImage(
  catalogue: ConfiguredCatalogue,
  entry: CatalogueEntry,
  region: string,
): ConfiguredImage {
  const regions = catalogue[entry.key] ?? {};
  const here = regions[region];
  if (here) return { kind: 'present', imageId: here };
  const first = Object.entries(regions)[0];
  return first ? { kind: 'copy', sourceRegion: first[0], sourceImageId: first[1] } : { kind: 'missing' };
}
