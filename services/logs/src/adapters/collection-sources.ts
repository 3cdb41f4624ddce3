import type { Bus } from '@fleetgraph/kit';
import { getCluster } from '@fleetgraph/schema';
import type { AgentLogs, ArchiveWriter, ClusterDirectory } from '../app/ports.js';
import { openAgentStream } from './agent-stream.js';
import { writeArchive } from './archive.js';

/**
 * Where collections get their clusters (`clusters.v1.get`), their logs (the clusters' agents, over
 * NATS) and their archives (zip).
 */
export function collectionSources(bus: Bus): {
  clusters: ClusterDirectory;
  agents: AgentLogs;
  archives: ArchiveWriter;
} {
  return {
    clusters: { cluster: (request) => bus.request(getCluster, request) },
    agents: { open: (request, options) => openAgentStream(bus, request, options) },
    archives: writeArchive,
  };
}
