import {
  createFleetgraphClient,
  CreateClusterDocument,
  CreateClusterProfileDocument,
  type ClusterEvent,
  type FleetgraphClient,
} from '@fleetgraph/client';
import { WebSocket } from 'ws';

/**
 * An integration as a third party writes one, with the typed client: creates a profile and a
 * cluster on the local cloud, then follows the cluster's events until it runs, resuming after its
 * last cursor whenever the connection is lost.
 *
 *   FLEETGRAPH_URL=http://127.0.0.1:4000/graphql FLEETGRAPH_TOKEN=<token or API key> \
 *     node test/dist/examples/follow-cluster.js <projectId>
 *
 * (a development token: `pnpm token --tenant t1 --project <projectId>=editor`).
 */
export interface FollowClusterOptions {
  url: string;
  token: string;
  projectId: string;
  /** Each event as it arrives. */
  onEvent?: (event: ClusterEvent) => void;
  /** Each loss of the subscription, before it resumes. */
  onResume?: (error: unknown, after: string | null) => void;
}

export async function followCluster(
  options: FollowClusterOptions,
): Promise<{ clusterId: string; events: ClusterEvent[] }> {
  const client: FleetgraphClient = createFleetgraphClient({
    url: options.url,
    token: options.token,
    webSocketImpl: WebSocket,
  });
  try {
    const suffix = Date.now().toString(36);
    const { createClusterProfile } = await client.request(CreateClusterProfileDocument, {
      input: {
        projectId: options.projectId,
        name: `example-${suffix}`,
        version: '1.0.0',
        cloud: 'LOCAL',
        layers: [
          { type: 'OS', name: 'ubuntu', version: '22.04' },
          { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4' },
          { type: 'CNI', name: 'calico', version: '3.28.0' },
        ],
      },
    });
    if (!createClusterProfile.profile) throw new Error(JSON.stringify(createClusterProfile.userErrors));

    const { createCluster } = await client.request(CreateClusterDocument, {
      input: {
        projectId: options.projectId,
        name: `example-${suffix}`,
        profileId: createClusterProfile.profile.id,
        cloud: { type: 'LOCAL', region: 'local-1' },
        nodePools: [
          { name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
          { name: 'workers', role: 'WORKER', count: 2, instanceType: 't3.medium' },
        ],
      },
    });
    if (!createCluster.cluster) throw new Error(JSON.stringify(createCluster.userErrors));
    const clusterId = createCluster.cluster.id;

    const events: ClusterEvent[] = [];
    for await (const event of client.followClusterEvents(clusterId, { retryMs: 500, onResume: options.onResume })) {
      events.push(event);
      options.onEvent?.(event);
      if (event.reason === 'PhaseRunning') break;
    }
    return { clusterId, events };
  } finally {
    await client.close();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').slice(-2).join('/'))) {
  const [projectId] = process.argv.slice(2);
  const { FLEETGRAPH_URL: url = 'http://127.0.0.1:4000/graphql', FLEETGRAPH_TOKEN: token } = process.env;
  if (!projectId || !token) {
    console.error('usage: FLEETGRAPH_TOKEN=<token> node follow-cluster.js <projectId>');
    process.exit(2);
  }
  const { clusterId } = await followCluster({
    url,
    token,
    projectId,
    onEvent: (e) => console.log(`${e.time} ${e.severity} ${e.reason}: ${e.message}`),
    onResume: (error, after) => console.log(`(connection lost: ${String(error)}; resuming after ${after})`),
  });
  console.log(`cluster ${clusterId} is running`);
}
