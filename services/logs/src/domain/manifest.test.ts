import type { ManifestResource } from '@fleetgraph/schema';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { archiveFileName, selectedParts, validateParts } from './bundle.js';
import { ManifestWriter, type ManifestHeader } from './manifest.js';

const header: ManifestHeader = {
  bundle: {
    id: 'lb_1',
    fileName: 'web-logs-20260101-000000.zip',
    requestedAt: '2026-01-01T00:00:00.000Z',
    collectedAt: '2026-01-01T00:00:05.000Z',
    parts: { kubeSystem: true, namespaceLogs: false, nodeLogs: true },
    tailLines: 10_000,
    namespaceSince: '2025-12-31T23:00:00.000Z',
  },
  cluster: { id: 'cls_1', name: 'web', projectId: 'p1', cloud: 'LOCAL', region: 'local-1' },
};
const pod: ManifestResource = {
  kind: 'Pod',
  namespace: 'kube-system',
  name: 'etcd-cp',
  node: 'cp',
  phase: 'Running',
  restarts: 0,
  containers: ['etcd'],
  controlledBy: 'Node/cp',
};
const node: ManifestResource = {
  kind: 'Node',
  name: 'cp',
  role: 'CONTROL_PLANE',
  pool: 'cp',
  zone: 'local-1a',
  instanceType: 't3.medium',
  ready: true,
  kubeletVersion: 'v1.30.4',
  internalIp: null,
  capacity: { cpu: 2, memoryMiB: 4096 },
  createdAt: '2026-01-01T00:00:00.000Z',
};
const event: ManifestResource = {
  kind: 'Event',
  namespace: 'default',
  type: 'Warning',
  reason: 'BackOff',
  message: 'line one\nline two: "quoted"',
  object: 'Pod/x',
  count: 2,
  lastTimestamp: '2026-01-01T00:00:00.000Z',
};

const withoutKind = ({ kind: _kind, ...fields }: ManifestResource) => fields;

describe('ManifestWriter', () => {
  it('should write one YAML document from pieces, with a section for every kind', () => {
    const writer = new ManifestWriter();
    const text = [
      writer.start(header, [{ path: 'nodes/cp/system.log', bytes: 10, lines: 1 }]),
      writer.item(pod),
      writer.item(event),
      writer.item(node),
      writer.finish(),
    ].join('');
    expect(parse(text)).toEqual({
      apiVersion: 'fleetgraph.dev/v1',
      kind: 'LogBundleManifest',
      bundle: {
        id: 'lb_1',
        fileName: 'web-logs-20260101-000000.zip',
        requestedAt: '2026-01-01T00:00:00.000Z',
        collectedAt: '2026-01-01T00:00:05.000Z',
        parts: { kubeSystem: true, namespaceLogs: false, nodeLogs: true },
        limits: { tailLines: 10_000, namespaceSince: '2025-12-31T23:00:00.000Z' },
      },
      cluster: header.cluster,
      files: [{ path: 'nodes/cp/system.log', bytes: 10, lines: 1 }],
      resources: {
        customResourceDefinitions: [],
        deployments: [],
        pods: [
          {
            namespace: 'kube-system',
            name: 'etcd-cp',
            node: 'cp',
            phase: 'Running',
            restarts: 0,
            containers: ['etcd'],
            controlledBy: 'Node/cp',
          },
        ],
        configMaps: [],
        events: [
          {
            namespace: 'default',
            type: 'Warning',
            reason: 'BackOff',
            message: 'line one\nline two: "quoted"',
            object: 'Pod/x',
            count: 2,
            lastTimestamp: '2026-01-01T00:00:00.000Z',
          },
        ],
        nodes: [withoutKind(node)],
      },
    });
    expect([writer.count('Pod'), writer.count('ConfigMap')]).toEqual([1, 0]);
  });

  it('should write empty sections when no resource came', () => {
    const writer = new ManifestWriter();
    const doc = parse(writer.start(header, []) + writer.finish());
    expect(doc.files).toEqual([]);
    expect(doc.resources).toEqual({
      customResourceDefinitions: [],
      deployments: [],
      pods: [],
      configMaps: [],
      events: [],
      nodes: [],
    });
  });

  it('should refuse resources out of kind order', () => {
    const writer = new ManifestWriter();
    writer.start(header, []);
    writer.item(node);
    expect(() => writer.item(pod)).toThrow('Pod resources came after Node resources');
  });
});

describe('bundle rules', () => {
  it.each([
    ['2026-05-23T10:15:30Z', 'web-prod', 'web-prod-logs-20260523-101530.zip'],
    ['2026-01-02T03:04:05Z', 'Web Prod / EU', 'Web-Prod-EU-logs-20260102-030405.zip'],
    ['2026-01-02T03:04:05Z', '../..', 'cluster-logs-20260102-030405.zip'],
  ])('should name the archive of a request at %s for cluster %j %s', (at, name, expected) => {
    expect(archiveFileName(name, new Date(at))).toBe(expected);
  });

  it('should select every part unless set to false, and refuse none', () => {
    expect(selectedParts({ kubeSystem: false, nodeLogs: null })).toEqual({
      kubeSystem: false,
      namespaceLogs: true,
      nodeLogs: true,
    });
    expect(validateParts(selectedParts({ kubeSystem: false, namespaceLogs: false, nodeLogs: false }))).toEqual([
      {
        code: 'NO_PART_SELECTED',
        message: 'select at least one of kubeSystem, namespaceLogs and nodeLogs',
        field: ['input'],
      },
    ]);
  });
});
