import type { LogParts, ManifestResource } from '@fleetgraph/schema';

/** What one collection asks for. */
export interface LogSelection {
  parts: LogParts;
  /** Every log: at most its last this many lines (`kubectl logs --tail`, `tail -n`). */
  tailLines: number;
  /** Namespace logs: only lines written since then (`kubectl logs --since-time`). */
  namespaceSince: Date;
}

/** One log file of a bundle. */
export interface LogFile {
  /** Its path in the archive, under its part's folder (`LOG_PART_FOLDERS`), e.g. `nodes/node-a/system.log`. */
  path: string;
  /** Its lines, oldest first, without line ends; read lazily, so that no log sits whole in memory. */
  lines(): Iterable<string> | AsyncIterable<string>;
}

/** One consistent view of a cluster for one collection: its files and the resources they belong to. */
export interface LogSnapshot {
  /** Nodes of the cluster, for progress messages. */
  nodes: number;
  /** The files of the selected parts, each part's folder in turn. */
  files(): Iterable<LogFile> | AsyncIterable<LogFile>;
  /** The resources Manifest.yaml describes, in `MANIFEST_KINDS` order. */
  resources(): Iterable<ManifestResource> | AsyncIterable<ManifestResource>;
}

/**
 * Where the agent's logs part reads a cluster's logs and resources. Two implementations: the
 * simulated cluster of the local cloud (`SimulatedLogSource`), and for real clusters one over the
 * Kubernetes API (pod logs with `tailLines` and `sinceTime`, resources by list) and the node agent
 * (journal and files, `tail -n`).
 */
export interface LogSource {
  /** Takes the view one collection reads. */
  open(selection: LogSelection): LogSnapshot;
}
