import { describe, expect, it } from 'vitest';
import {
  CATALOGUE,
  configuredImage,
  findCatalogueEntry,
  ImageTagKeys,
  kubernetesMinorOf,
  pickCatalogueImage,
  type CloudImageLike,
} from './catalogue.js';

describe('the catalogue', () => {
  it('should hold Ubuntu 22.04 and 24.04 with Kubernetes 1.29, 1.30 and 1.31, hardened to the CIS benchmark', () => {
    expect(CATALOGUE.map((e) => e.key)).toEqual([
      'ubuntu-22.04-k8s-1.29',
      'ubuntu-22.04-k8s-1.30',
      'ubuntu-22.04-k8s-1.31',
      'ubuntu-24.04-k8s-1.29',
      'ubuntu-24.04-k8s-1.30',
      'ubuntu-24.04-k8s-1.31',
    ]);
    for (const entry of CATALOGUE) expect(entry.description).toMatch(/CIS Ubuntu Linux \d\d\.04 LTS Benchmark/);
  });

  it.each(['1.30.0', '1.30.4', '1.30.14', 'v1.30.4', '1.30.4-rc.1', '1.30'])(
    'should resolve Kubernetes %s to the 1.30 image',
    (version) => {
      expect(findCatalogueEntry('ubuntu', '22.04', version)).toEqual({
        ok: true,
        value: expect.objectContaining({ key: 'ubuntu-22.04-k8s-1.30' }),
      });
    },
  );

  it.each([
    ['an unknown OS', 'windows', '22.04', '1.30.4', /unknown OS "windows"/],
    ['an OS version outside the catalogue', 'ubuntu', '20.04', '1.30.4', /ubuntu 20\.04 is not in the catalogue/],
    ['a Kubernetes minor outside the catalogue', 'ubuntu', '22.04', '1.28.9', /Kubernetes 1\.28 is not supported/],
    ['a Kubernetes version that is not one', 'ubuntu', '22.04', 'latest', /not a version such as/],
  ])('should refuse %s', (_what, os, osVersion, k8s, problem) => {
    const found = findCatalogueEntry(os, osVersion, k8s);
    expect(found.ok).toBe(false);
    expect(!found.ok && found.problem).toMatch(problem);
  });

  it('should read the minor of a version', () => {
    expect(kubernetesMinorOf('1.31.10')).toBe('1.31');
    expect(kubernetesMinorOf('01.030.1')).toBe('1.30');
    expect(kubernetesMinorOf('one.two')).toBeNull();
  });
});

describe('pickCatalogueImage', () => {
  const entry = CATALOGUE.find((e) => e.key === 'ubuntu-22.04-k8s-1.30')!;
  const image = (
    id: string,
    k8s: string,
    extra: Partial<CloudImageLike> = {},
    tags: Record<string, string> = {},
  ): CloudImageLike => ({
    id,
    status: 'available',
    tags: {
      [ImageTagKeys.os]: 'ubuntu',
      [ImageTagKeys.osVersion]: '22.04',
      [ImageTagKeys.kubernetesVersion]: k8s,
      ...tags,
    },
    ...extra,
  });

  it('should pick the newest patch of the minor, preferring available images', () => {
    const images = [
      image('a', '1.30.2'),
      image('b', '1.30.14'),
      image('c', '1.31.1'),
      image('d', '1.30.20', { status: 'pending' }),
    ];
    expect(pickCatalogueImage(entry, images)?.id).toBe('b');
  });

  it('should never pick a customised image or a failed one', () => {
    expect(
      pickCatalogueImage(entry, [
        image('x', '1.30.1', {}, { [ImageTagKeys.signature]: 'abc' }),
        image('y', '1.30.1', { status: 'failed' }),
      ]),
    ).toBeNull();
  });
});

describe('configuredImage', () => {
  const entry = CATALOGUE[0]!;
  const catalogue = { [entry.key]: { 'us-east-1': 'ami-1', 'eu-west-1': 'ami-2' } };

  it.each([
    ['us-east-1', { kind: 'present', imageId: 'ami-1' }],
    ['eu-west-1', { kind: 'present', imageId: 'ami-2' }],
    ['ap-south-1', { kind: 'copy', sourceRegion: 'us-east-1', sourceImageId: 'ami-1' }],
  ])('should find the image for %s', (region, expected) => {
    expect(configuredImage(catalogue, entry, region)).toEqual(expected);
  });

  it('should say when an entry is not configured', () => {
    expect(configuredImage({}, entry, 'us-east-1')).toEqual({ kind: 'missing' });
  });
});
