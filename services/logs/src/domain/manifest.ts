import { MANIFEST_KINDS, type LogParts, type ManifestKind, type ManifestResource } from '@fleetgraph/schema';
import { stringify } from 'yaml';

/** The file name of the manifest at the root of every archive. */
export const MANIFEST_FILE = 'Manifest.yaml';

/** The key under `resources:` of each kind. */
export const MANIFEST_SECTIONS: Record<ManifestKind, string> = {
  CustomResourceDefinition: 'customResourceDefinitions',
  Deployment: 'deployments',
  Pod: 'pods',
  ConfigMap: 'configMaps',
  Event: 'events',
  Node: 'nodes',
};

/** A file of the archive, as the manifest lists it. */
export interface ArchivedFile {
  path: string;
  bytes: number;
  lines: number;
}

/** What the manifest says about the bundle and its cluster. */
export interface ManifestHeader {
  bundle: {
    id: string;
    fileName: string;
    requestedAt: string;
    collectedAt: string;
    parts: LogParts;
    tailLines: number;
    namespaceSince: string;
  };
  cluster: { id: string; name: string; projectId: string; cloud: string; region: string };
}

const YAML_OPTIONS = { lineWidth: 0 } as const;

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((line) => (line.length > 0 ? pad + line : line))
    .join('\n');
}

/**
 * Manifest.yaml is written as the resources arrive, never built whole: `start` (the bundle, the
 * cluster and the files), then for each resource `item` (preceded by `section` when its kind
 * begins), then `finish`, which closes the sections no resource opened. The result is one YAML
 * document:
 *
 * ```yaml
 * apiVersion: fleetgraph.dev/v1
 * kind: LogBundleManifest
 * bundle: { id, fileName, requestedAt, collectedAt, parts, limits }
 * cluster: { id, name, projectId, cloud, region }
 * files: [{ path, bytes, lines }]
 * resources:
 *   customResourceDefinitions: [...]
 *   deployments: [...]
 *   pods: [...]
 *   configMaps: [...]
 *   events: [...]
 *   nodes: [...]
 * ```
 */
export class ManifestWriter {
  private kindIndex = -1;
  private readonly counts = new Map<ManifestKind, number>();

  /** The document up to `resources:`. */
  start(header: ManifestHeader, files: readonly ArchivedFile[]): string {
    const { bundle, cluster } = header;
    const head = stringify(
      {
        apiVersion: 'fleetgraph.dev/v1',
        kind: 'LogBundleManifest',
        bundle: {
          id: bundle.id,
          fileName: bundle.fileName,
          requestedAt: bundle.requestedAt,
          collectedAt: bundle.collectedAt,
          parts: bundle.parts,
          limits: { tailLines: bundle.tailLines, namespaceSince: bundle.namespaceSince },
        },
        cluster,
        files,
      },
      YAML_OPTIONS,
    );
    return `${head}resources:\n`;
  }

  /**
   * The text of one resource, opening its kind's section (and closing skipped ones) first.
   * @throws RangeError when a kind comes after a later one (resources must arrive in `MANIFEST_KINDS` order)
   */
  item(resource: ManifestResource): string {
    const index = MANIFEST_KINDS.indexOf(resource.kind);
    if (index < this.kindIndex)
      throw new RangeError(`${resource.kind} resources came after ${MANIFEST_KINDS[this.kindIndex]} resources`);
    let text = '';
    if (index > this.kindIndex) {
      text += this.skipTo(index);
      text += `  ${MANIFEST_SECTIONS[resource.kind]}:\n`;
      this.kindIndex = index;
    }
    const { kind: _kind, ...fields } = resource;
    this.counts.set(resource.kind, (this.counts.get(resource.kind) ?? 0) + 1);
    return text + indent(stringify([fields], YAML_OPTIONS), 4);
  }

  /** Closes the document: empty sections for the kinds no resource had. */
  finish(): string {
    return this.skipTo(MANIFEST_KINDS.length);
  }

  /** How many resources of each kind were written. */
  count(kind: ManifestKind): number {
    return this.counts.get(kind) ?? 0;
  }

  private skipTo(index: number): string {
    let text = '';
    for (let i = this.kindIndex + 1; i < index; i++) text += `  ${MANIFEST_SECTIONS[MANIFEST_KINDS[i]!]}: []\n`;
    this.kindIndex = Math.max(this.kindIndex, index - 1);
    return text;
  }
}
