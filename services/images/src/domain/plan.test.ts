import { describe, expect, it } from 'vitest';
import { planImage, type LayersInput } from './plan.js';

const layers = (os: Partial<LayersInput['os']> = {}, k8s: Partial<LayersInput['kubernetes']> = {}): LayersInput => ({
  os: { type: 'OS', name: 'ubuntu', version: '22.04', ...os },
  kubernetes: { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4', ...k8s },
});

describe('planImage', () => {
  it.each<[string, LayersInput, Record<string, unknown>]>([
    ['the catalogue image for a plain OS layer', layers(), { kind: 'OUT_OF_BOX' }],
    ['the catalogue image when values come without roles', layers({ values: 'a: 1' }), { kind: 'OUT_OF_BOX' }],
    [
      'a build from the catalogue image for roles',
      layers({ ansibleRoles: ['hardening'] }),
      {
        kind: 'CUSTOMIZED',
        base: { kind: 'catalogue', entry: expect.objectContaining({ key: 'ubuntu-22.04-k8s-1.30' }) },
        installKubernetes: true,
      },
    ],
    [
      'a bring-your-own image used as is',
      layers({ imageRef: 'ami-0abc', skipK8sInstall: true }),
      { kind: 'BRING_YOUR_OWN', imageRef: 'ami-0abc' },
    ],
    [
      'a build installing Kubernetes on a bring-your-own image',
      layers({ imageRef: 'ami-0abc', skipK8sInstall: false }),
      { kind: 'CUSTOMIZED', base: { kind: 'ref', imageRef: 'ami-0abc' }, installKubernetes: true },
    ],
    [
      'a build running only roles on a bring-your-own image with Kubernetes',
      layers({ imageRef: 'ami-0abc', skipK8sInstall: true, ansibleRoles: ['x'] }),
      { kind: 'CUSTOMIZED', installKubernetes: false },
    ],
    [
      'a bring-your-own image with any Kubernetes it says it has',
      layers({ imageRef: 'ami-0abc', skipK8sInstall: true }, { version: '1.27.3' }),
      { kind: 'BRING_YOUR_OWN' },
    ],
  ])('should plan %s', (_what, input, expected) => {
    const result = planImage(input);
    expect(result).toEqual({ ok: true, plan: expect.objectContaining(expected) });
  });

  it('should sign the catalogue image by its Kubernetes minor, so that every patch shares it', () => {
    const a = planImage(layers({}, { version: '1.30.1' }));
    const b = planImage(layers({}, { version: '1.30.9' }));
    expect(a.ok && b.ok && a.plan.signature === b.plan.signature).toBe(true);
  });

  it.each<[string, LayersInput, RegExp]>([
    ['an unknown OS', layers({ name: 'windows' }), /unknown OS/],
    ['an OS version outside the catalogue', layers({ version: '18.04' }), /not in the catalogue/],
    [
      'a Kubernetes minor outside the catalogue',
      layers({}, { version: '1.27.0' }),
      /Kubernetes 1\.27 is not supported/,
    ],
    [
      'a Kubernetes install outside the catalogue on a bring-your-own image',
      layers({ imageRef: 'ami-1' }, { version: '1.27.0' }),
      /not supported/,
    ],
    [
      'an unknown OS on a bring-your-own image',
      layers({ name: 'plan9', imageRef: 'ami-1', skipK8sInstall: true }),
      /unknown OS/,
    ],
    ['skipK8sInstall without an image', layers({ skipK8sInstall: true }), /needs an imageRef/],
    ['a malformed role', layers({ ansibleRoles: ['bad role'] }), /not an Ansible role name/],
    ['an imageRef with spaces', layers({ imageRef: 'my image' }), /without spaces/],
    ['layers swapped', { os: layers().kubernetes, kubernetes: layers().os }, /not OS/],
  ])('should refuse %s', (_what, input, problem) => {
    const result = planImage(input);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problem).toMatch(problem);
  });
});
