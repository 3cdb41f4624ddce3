import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createFleetgraphClient,
  CreateClusterDocument,
  CreateClusterProfileDocument,
  CreateWebhookDocument,
  DeleteWebhookDocument,
  type ClusterEvent,
  type FleetgraphClient,
} from '@fleetgraph/client';
import { Webhook } from 'standardwebhooks';
import { WebSocket } from 'ws';

/**
 * An integration as a third party writes one, with the typed client: registers a webhook for
 * phase changes (a receiver on this machine that verifies each delivery's signature), creates a
 * profile and a cluster on the local cloud, follows the cluster's events until it runs (resuming
 * after its last cursor whenever the connection is lost), and waits for the signed delivery that
 * says it is RUNNING. Needs a project admin's token or API key (webhooks are the admins').
 *
 *   FLEETGRAPH_URL=http://127.0.0.1:4000/graphql FLEETGRAPH_TOKEN=<token or API key> \
 *     node test/dist/examples/follow-cluster.js <projectId>
 *
 * (a development token: `pnpm token --tenant t1 --project <projectId>=admin`).
 */
export interface FollowClusterOptions {
  url: string;
  token: string;
  projectId: string;
  /** Each event as it arrives. */
  onEvent?: (event: ClusterEvent) => void;
  /** Each loss of the subscription, before it resumes. */
  onResume?: (error: unknown, after: string | null) => void;
  /** The address the webhook receiver listens on, which the platform must reach. @default 127.0.0.1 */
  receiverHost?: string;
}

/** A delivery the receiver took, its signature verified. */
export interface ReceivedDelivery {
  id: string;
  type: string;
  data: { clusterId?: string; phase?: string } & Record<string, unknown>;
}

/**
 * An HTTP receiver of webhook deliveries: answers 204 to a delivery whose Standard Webhooks
 * signature verifies with the secret, 400 to any other.
 */
async function startReceiver(host: string) {
  let verifier: Webhook | undefined;
  const received: ReceivedDelivery[] = [];
  const waiting = new Set<() => void>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        const body = Buffer.concat(chunks).toString('utf8');
        const payload = verifier!.verify(body, headersOf(req.headers)) as Omit<ReceivedDelivery, 'id'>;
        received.push({ id: String(req.headers['webhook-id']), type: payload.type, data: payload.data });
        for (const wake of waiting) wake();
        res.writeHead(204).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/fleetgraph`,
    received,
    verifyWith: (secret: string) => {
      verifier = new Webhook(secret);
    },
    /** Resolves with the first delivery `match` accepts, received or to come. */
    async first(match: (delivery: ReceivedDelivery) => boolean, timeoutMs: number): Promise<ReceivedDelivery> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no such delivery within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiting.delete(wake);
            resolve();
          };
          waiting.add(wake);
          setTimeout(wake, 500);
        });
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const headersOf = (headers: IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, String(value)]));

export async function followCluster(
  options: FollowClusterOptions,
): Promise<{ clusterId: string; events: ClusterEvent[]; running: ReceivedDelivery }> {
  const client: FleetgraphClient = createFleetgraphClient({
    url: options.url,
    token: options.token,
    webSocketImpl: WebSocket,
  });
  const receiver = await startReceiver(options.receiverHost ?? '127.0.0.1');
  let webhookId: string | undefined;
  try {
    const { createWebhook } = await client.request(CreateWebhookDocument, {
      input: {
        projectId: options.projectId,
        url: receiver.url,
        events: ['CLUSTER_PHASE'],
        description: 'follow-cluster example',
      },
    });
    if (!createWebhook.webhook || !createWebhook.secret) throw new Error(JSON.stringify(createWebhook.userErrors));
    webhookId = createWebhook.webhook.id;
    // The secret is shown once: a real integration keeps it with its other secrets.
    receiver.verifyWith(createWebhook.secret);

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
    const running = await receiver.first((d) => d.data.clusterId === clusterId && d.data.phase === 'RUNNING', 60_000);
    return { clusterId, events, running };
  } finally {
    if (webhookId) await client.request(DeleteWebhookDocument, { id: webhookId }).catch(() => {});
    await client.close();
    await receiver.close();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').slice(-2).join('/'))) {
  const [projectId] = process.argv.slice(2);
  const { FLEETGRAPH_URL: url = 'http://127.0.0.1:4000/graphql', FLEETGRAPH_TOKEN: token } = process.env;
  if (!projectId || !token) {
    console.error('usage: FLEETGRAPH_TOKEN=<token> node follow-cluster.js <projectId>');
    process.exit(2);
  }
  const { clusterId, running } = await followCluster({
    url,
    token,
    projectId,
    onEvent: (e) => console.log(`${e.time} ${e.severity} ${e.reason}: ${e.message}`),
    onResume: (error, after) => console.log(`(connection lost: ${String(error)}; resuming after ${after})`),
  });
  console.log(`cluster ${clusterId} is running; the signed webhook delivery ${running.id} said so too`);
}
