import type { CloudType } from '@fleetgraph/schema';
import semver from 'semver';
import { parseAllDocuments } from 'yaml';

export const PackType = { OS: 'OS', KUBERNETES: 'KUBERNETES', CNI: 'CNI', CSI: 'CSI', ADDON: 'ADDON' } as const;
export type PackType = (typeof PackType)[keyof typeof PackType];

/** Layers are applied in this order; a profile lists them so. */
const LAYER_RANK: Record<PackType, number> = { OS: 0, KUBERNETES: 1, CNI: 2, CSI: 3, ADDON: 4 };
/** How many layers of each type a profile may have. */
const LAYER_COUNT: Record<PackType, { min: number; max: number }> = {
  OS: { min: 1, max: 1 },
  KUBERNETES: { min: 1, max: 1 },
  CNI: { min: 0, max: 1 },
  CSI: { min: 0, max: 1 },
  ADDON: { min: 0, max: 30 },
};

export const LIMITS = {
  nameLength: 63,
  descriptionLength: 1_000,
  layers: 34,
  valuesBytes: 256 * 1024,
  ansibleRoles: 50,
  refLength: 256,
} as const;

export interface PackLayer {
  type: PackType;
  name: string;
  version: string;
  values: string | null;
  ansibleRoles: string[] | null;
  imageRef: string | null;
  skipK8sInstall: boolean | null;
}

export interface ClusterProfile {
  id: string;
  tenantId: string;
  projectId: string;
  name: string;
  version: string;
  description: string | null;
  cloud: CloudType | null;
  layers: PackLayer[];
  createdAt: string;
}

export interface ProfileDraft {
  projectId: string;
  name: string;
  version: string;
  description?: string | null;
  cloud?: CloudType | null;
  layers: ReadonlyArray<{
    type: PackType;
    name: string;
    version: string;
    values?: string | null;
    ansibleRoles?: readonly string[] | null;
    imageRef?: string | null;
    skipK8sInstall?: boolean | null;
  }>;
}

export interface Problem {
  field: (string | number)[];
  code: string;
  message: string;
}

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const PACK_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const PACK_VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const ROLE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Every problem of a profile draft, in input order; empty when it is valid. Pure: no I/O. */
export function validateProfile(draft: ProfileDraft): Problem[] {
  const problems: Problem[] = [];
  const add = (field: (string | number)[], code: string, message: string) =>
    problems.push({ field: ['input', ...field], code, message });

  if (!NAME.test(draft.name))
    add(
      ['name'],
      'INVALID_NAME',
      `name must be 1-${LIMITS.nameLength} lowercase letters, digits or "-", ` +
        'starting and ending with a letter or digit',
    );
  if (draft.version.length > 64 || semver.valid(draft.version) !== draft.version) {
    add(
      ['version'],
      'INVALID_SEMVER',
      `version "${draft.version.slice(0, 64)}" is not a semantic version such as 1.0.0`,
    );
  }
  if (draft.description != null && draft.description.length > LIMITS.descriptionLength) {
    add(['description'], 'TOO_LONG', `description is longer than ${LIMITS.descriptionLength} characters`);
  }

  const layers = draft.layers;
  if (layers.length > LIMITS.layers)
    add(['layers'], 'TOO_MANY_LAYERS', `a profile has at most ${LIMITS.layers} layers`);
  for (const type of Object.keys(LAYER_COUNT) as PackType[]) {
    const count = layers.filter((l) => l.type === type).length;
    const { min, max } = LAYER_COUNT[type];
    if (count < min || count > max) {
      const expected = min === max ? `exactly ${min}` : `at most ${max}`;
      add(['layers'], 'INVALID_LAYERS', `a profile has ${expected} ${type} layer${max === 1 ? '' : 's'}, not ${count}`);
    }
  }
  for (let i = 1; i < layers.length; i++) {
    const previous = layers[i - 1]!;
    const layer = layers[i]!;
    if (LAYER_RANK[layer.type] < LAYER_RANK[previous.type]) {
      add(
        ['layers', i, 'type'],
        'INVALID_LAYER_ORDER',
        `layers are ordered OS, KUBERNETES, CNI, CSI, ADDON: ${layer.type} cannot follow ${previous.type}`,
      );
    }
  }
  const seen = new Set<string>();
  layers.forEach((layer, i) => {
    const at = (f: string) => ['layers', i, f];
    if (!PACK_NAME.test(layer.name))
      add(at('name'), 'INVALID_PACK_NAME', 'pack name must be 1-63 lowercase letters, digits, ".", "_" or "-"');
    if (!PACK_VERSION.test(layer.version))
      add(at('version'), 'INVALID_PACK_VERSION', 'pack version must be 1-64 letters, digits, ".", "_", "+" or "-"');
    else if (layer.type === 'KUBERNETES' && !semver.valid(layer.version)) {
      add(at('version'), 'INVALID_SEMVER', `Kubernetes version "${layer.version}" is not a version such as 1.30.4`);
    }
    if (seen.has(layer.name)) add(at('name'), 'DUPLICATE_PACK', `pack "${layer.name}" appears twice`);
    seen.add(layer.name);
    if (layer.values != null) {
      if (Buffer.byteLength(layer.values) > LIMITS.valuesBytes)
        add(at('values'), 'TOO_LONG', `values are larger than ${LIMITS.valuesBytes / 1024} KiB`);
      else {
        const error = parseAllDocuments(layer.values, { prettyErrors: true })
          .flatMap((d) => ('errors' in d ? d.errors : []))
          .at(0);
        if (error) add(at('values'), 'INVALID_YAML', `values are not valid YAML: ${error.message.split('\n')[0]}`);
      }
    }
    const osOnly = { ansibleRoles: layer.ansibleRoles, imageRef: layer.imageRef, skipK8sInstall: layer.skipK8sInstall };
    for (const [field, value] of Object.entries(osOnly)) {
      if (value != null && layer.type !== 'OS')
        add(at(field), 'OS_LAYER_ONLY', `${field} applies to the OS layer only`);
    }
    if (layer.ansibleRoles != null) {
      if (layer.ansibleRoles.length > LIMITS.ansibleRoles)
        add(at('ansibleRoles'), 'TOO_MANY_ROLES', `at most ${LIMITS.ansibleRoles} Ansible roles`);
      layer.ansibleRoles.forEach((role, r) => {
        if (!ROLE.test(role))
          add(['layers', i, 'ansibleRoles', r], 'INVALID_ROLE', `"${role.slice(0, 64)}" is not an Ansible role name`);
      });
    }
    if (
      layer.imageRef != null &&
      (layer.imageRef.length === 0 || layer.imageRef.length > LIMITS.refLength || /\s/.test(layer.imageRef))
    ) {
      add(at('imageRef'), 'INVALID_IMAGE_REF', `imageRef must be 1-${LIMITS.refLength} characters without spaces`);
    }
    if (layer.skipK8sInstall && layer.imageRef == null) {
      add(
        at('skipK8sInstall'),
        'IMAGE_REF_REQUIRED',
        'skipK8sInstall needs an imageRef: the image that already has Kubernetes',
      );
    }
  });
  return problems;
}

/** Versions of one profile name, newest first by semantic-version precedence. */
export function newestFirst<T extends { version: string }>(profiles: readonly T[]): T[] {
  return [...profiles].sort((a, b) => semver.rcompare(a.version, b.version));
}
