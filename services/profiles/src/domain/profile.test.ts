import { describe, expect, it } from 'vitest';
import { newestFirst, validateProfile, type ProfileDraft } from './profile.js';

const draft = (overrides: Partial<ProfileDraft> = {}): ProfileDraft => ({
  projectId: 'p1',
  name: 'base',
  version: '1.0.0',
  layers: [
    { type: 'OS', name: 'ubuntu', version: '22.04', ansibleRoles: ['hardening'] },
    { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4' },
    { type: 'CNI', name: 'calico', version: '3.28.0' },
    { type: 'CSI', name: 'csi-aws-ebs', version: '1.30.0' },
    { type: 'ADDON', name: 'prometheus', version: '2.53.0', values: 'a: 1\n' },
    { type: 'ADDON', name: 'vault', version: '1.17.0' },
  ],
  ...overrides,
});
const layers = (...ls: ProfileDraft['layers']) => ({ layers: ls });
const os = { type: 'OS', name: 'ubuntu', version: '22.04' } as const;
const k8s = { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4' } as const;

describe('validateProfile', () => {
  it('should accept a complete, ordered profile', () => {
    expect(validateProfile(draft())).toEqual([]);
  });

  it.each<[string, Partial<ProfileDraft>, string, (string | number)[]]>([
    ['a version with a v prefix', { version: 'v1.0.0' }, 'INVALID_SEMVER', ['input', 'version']],
    ['a partial version', { version: '1.0' }, 'INVALID_SEMVER', ['input', 'version']],
    ['an upper-case name', { name: 'Base' }, 'INVALID_NAME', ['input', 'name']],
    ['a long description', { description: 'x'.repeat(1001) }, 'TOO_LONG', ['input', 'description']],
    ['no OS layer', layers(k8s), 'INVALID_LAYERS', ['input', 'layers']],
    ['no Kubernetes layer', layers(os), 'INVALID_LAYERS', ['input', 'layers']],
    [
      'two CNI layers',
      layers(os, k8s, { type: 'CNI', name: 'calico', version: '1' }, { type: 'CNI', name: 'cilium', version: '1' }),
      'INVALID_LAYERS',
      ['input', 'layers'],
    ],
    [
      'an add-on before the CNI',
      layers(os, k8s, { type: 'ADDON', name: 'vault', version: '1' }, { type: 'CNI', name: 'calico', version: '1' }),
      'INVALID_LAYER_ORDER',
      ['input', 'layers', 3, 'type'],
    ],
    [
      'a pack twice',
      layers(os, k8s, { type: 'ADDON', name: 'vault', version: '1' }, { type: 'ADDON', name: 'vault', version: '2' }),
      'DUPLICATE_PACK',
      ['input', 'layers', 3, 'name'],
    ],
    [
      'a Kubernetes version that is not semver',
      layers(os, { ...k8s, version: '1.30' }),
      'INVALID_SEMVER',
      ['input', 'layers', 1, 'version'],
    ],
    ['invalid YAML', layers(os, { ...k8s, values: 'a: [1' }), 'INVALID_YAML', ['input', 'layers', 1, 'values']],
    [
      'Ansible roles on a non-OS layer',
      layers(os, { ...k8s, ansibleRoles: ['x'] }),
      'OS_LAYER_ONLY',
      ['input', 'layers', 1, 'ansibleRoles'],
    ],
    [
      'an invalid role name',
      layers({ ...os, ansibleRoles: ['bad role'] }, k8s),
      'INVALID_ROLE',
      ['input', 'layers', 0, 'ansibleRoles', 0],
    ],
    [
      'skipK8sInstall without an image',
      layers({ ...os, skipK8sInstall: true }, k8s),
      'IMAGE_REF_REQUIRED',
      ['input', 'layers', 0, 'skipK8sInstall'],
    ],
    [
      'an imageRef with spaces',
      layers({ ...os, imageRef: 'ami 123' }, k8s),
      'INVALID_IMAGE_REF',
      ['input', 'layers', 0, 'imageRef'],
    ],
  ])('should refuse %s', (_what, overrides, code, field) => {
    expect(validateProfile(draft(overrides))).toContainEqual(
      expect.objectContaining({ code, field: field.map((f) => f) }),
    );
  });

  it('should accept a bring-your-own image that skips the Kubernetes install', () => {
    expect(validateProfile(draft(layers({ ...os, imageRef: 'ami-0abc', skipK8sInstall: true }, k8s)))).toEqual([]);
  });

  it('should report every problem at once', () => {
    expect(validateProfile(draft({ name: 'Bad!', version: 'x', ...layers(k8s) })).map((p) => p.code)).toEqual(
      expect.arrayContaining(['INVALID_NAME', 'INVALID_SEMVER', 'INVALID_LAYERS']),
    );
  });
});

describe('newestFirst', () => {
  it('should order by semantic-version precedence, not by text', () => {
    const versions = ['1.2.0', '1.10.0', '1.9.1', '2.0.0-rc.1', '2.0.0'].map((version) => ({ version }));
    expect(newestFirst(versions).map((v) => v.version)).toEqual(['2.0.0', '2.0.0-rc.1', '1.10.0', '1.9.1', '1.2.0']);
  });
});
