/**
 * The world outside the orchestrator, for `orchestrator.bench.ts`, in a process of its own so
 * that its CPU is measured apart from the orchestrator's: the local cloud, a simulated agent
 * beside each cluster's machines (pack installs only: it starts with the cluster's first running
 * machine, as a real cluster's agent does) and stand-ins for the profiles and images services.
 * With AGENTS=any (for a cloud that is not this one), one responder installs packs for every
 * cluster instead.
 *
 * Plain JavaScript on the services' builds (`pnpm build`), so that Node runs it without a build
 * of the test package. Environment: DATA_DIR, NATS_URL, NATS_CREDENTIALS, LOCAL_CLOUD_SPEED, LOCAL_CLOUD_VCPU_LIMIT,
 * AGENTS (`machines` or `any`). Prints `{"msg":"listening","url":...}` when ready (what
 * test/src/processes.ts waits for).
 */
import { SimulatedSource, startAgent } from '@fleetgraph/agent';
import { BusError, createBus, createLogger } from '@fleetgraph/kit';
import { FIRST_SEED_IMAGE, startLocalCloud } from '@fleetgraph/local-cloud';
import { applyPacks, getProfile, resolveImage } from '@fleetgraph/schema';

const speed = Number(process.env.LOCAL_CLOUD_SPEED ?? 100_000);
const vcpuLimit = Number(process.env.LOCAL_CLOUD_VCPU_LIMIT ?? 1_000_000);
const log = createLogger('orchestrator-bench-world', 'silent');

const cloud = await startLocalCloud({ dataDir: process.env.DATA_DIR, speed, vcpuLimit });
const bus = await createBus({
  url: process.env.NATS_URL,
  name: 'orchestrator-bench-world',
  log,
  credentials: process.env.NATS_CREDENTIALS,
});

// Every profile id names the same small profile: an OS, Kubernetes, a CNI and one add-on.
bus.serve(getProfile, async ({ tenantId, projectId, id }) => {
  if (!id.startsWith('prof-')) throw new BusError('NOT_FOUND', 'no such profile');
  return {
    id,
    tenantId,
    projectId,
    name: 'base',
    version: '1.0.0',
    description: null,
    cloud: 'LOCAL',
    createdAt: new Date(0).toISOString(),
    layers: [
      { type: 'OS', name: 'ubuntu', version: '22.04' },
      { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4' },
      { type: 'CNI', name: 'calico', version: '3.28.0' },
      { type: 'ADDON', name: 'prometheus', version: '2.53.0' },
    ],
  };
});

// The images service: the local cloud's seed image, ready at once.
bus.serve(resolveImage, async (r) => ({
  id: `img-${r.kubernetes.version}`,
  tenantId: 'public',
  signature: 'sig',
  os: 'ubuntu',
  osVersion: '22.04',
  kubernetesVersion: r.kubernetes.version,
  cloud: 'LOCAL',
  region: r.region,
  source: 'OUT_OF_BOX',
  status: 'READY',
  artifactId: FIRST_SEED_IMAGE.id,
  ansibleRoles: [],
  message: null,
  createdAt: new Date(0).toISOString(),
}));

if (process.env.AGENTS === 'any') {
  bus.serve(applyPacks, async ({ packs }) => ({
    installed: packs.map((p) => ({ name: p.name, version: p.version })),
    failed: [],
  }));
}
const agents = new Map();
cloud.machineEvents.on(({ type, machine }) => {
  const clusterId = machine.tags['fleetgraph:cluster'];
  const tenantId = machine.tags['fleetgraph:tenant'];
  if (type !== 'running' || !clusterId || !tenantId || agents.has(clusterId)) return;
  agents.set(clusterId, startAgent({ bus, log, clusterId, tenantId, source: new SimulatedSource({ speed }) }));
});

console.log(JSON.stringify({ msg: 'listening', url: cloud.url }));

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await Promise.allSettled([...agents.values()].map((a) => a.stop()));
    await bus.close();
    await cloud.close();
    process.exit(0);
  })();
});
