import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogsPart, SimulatedLogSource, SimulatedSource, startAgent, type SimulatedNode } from '@fleetgraph/agent';
import {
  BusError,
  createBus,
  createLogger,
  DEV_INTERNAL_SECRET,
  Identity,
  INTERNAL_IDENTITY_HEADER,
  signInternalIdentity,
} from '@fleetgraph/kit';
import { freePort, startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { getCluster } from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcess } from '../src/processes.js';

/**
 * Benchmark of the logs service: a bundle of a 50-node cluster, every log of it (each node's
 * agent, system and cloud-init logs, every kube-system and platform-namespace container) with
 * the same number of lines, at two sizes. The logs service runs as its own process (built:
 * `pnpm build` first); the simulated agent runs here. Prints the collection time (the archive
 * is written while the logs arrive, so it is one figure), the download time, and the logs
 * service's resident memory: at rest, at its peak while collecting, and its peak while serving
 * the download. Asserts nothing about time or memory.
 *
 * Run: npx vitest run --project bench test/bench/logs.bench.ts
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const NODES = 50;
const SIZES = [1_000, 10_000];
const log = createLogger('logs-bench', 'silent');

/** Resident memory of a process, in MiB, from /proc (Linux). */
const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** Samples a process's RSS every 20 ms until stopped; returns the peak. */
function sampleRss(pid: number) {
  let peak = rssMiB(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 20);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, rssMiB(pid));
    },
  };
}

function jsonLine(line: string): Record<string, any> {
  try {
    return JSON.parse(line) as Record<string, any>;
  } catch {
    return {};
  }
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

describe('logs service benchmark', () => {
  let nats: NatsServer | undefined;

  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  const results: Record<string, unknown>[] = [];

  it.each(SIZES)('should collect a bundle of %i lines per log from a 50-node cluster', async (lines) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'fleetgraph-logs-bench-'));
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const natsUrl = nats!.url;
    const service = await startProcess('logs', `${root}services/logs/dist/main.js`, {
      NATS_URL: natsUrl,
      NATS_CREDENTIALS: await nats!.credentials('logs'),
      DATA_DIR: dataDir,
      PORT: String(port),
      MONGODB_URI: '',
      LOG_LEVEL: 'info',
      NODE_ENV: 'test',
      PUBLIC_URL: `${origin}/graphql`,
      LOGS_MAX_ARCHIVE_MB: '4096',
      LOGS_DEADLINE_MS: '900000',
    });
    const bus = await createBus({ url: natsUrl, name: 'bench', log, credentials: await nats!.credentials('bench') });
    const tenantId = 'bench';
    const clusterId = `cls-bench-${lines}`;
    bus.serve(getCluster, async ({ id }) => {
      if (id !== clusterId) throw new BusError('NOT_FOUND', 'no such cluster');
      return {
        id,
        tenantId,
        projectId: 'p',
        name: `bench-${lines}`,
        phase: 'RUNNING' as const,
        cloud: { type: 'LOCAL' as const, region: 'local-1' },
        nodePools: [],
      };
    });
    const nodes: SimulatedNode[] = Array.from({ length: NODES }, (_, i) => ({
      name: `bench-node-${String(i).padStart(2, '0')}`,
      role: i < 3 ? 'CONTROL_PLANE' : 'WORKER',
      pool: i < 3 ? 'control-plane' : 'workers',
      zone: `local-1${'abc'[i % 3]}`,
      instanceType: 'm5.large',
      vcpus: 2,
      memoryMiB: 8192,
      privateIp: `10.0.${Math.floor(i / 250)}.${i % 250}`,
      runningSince: new Date(Date.now() - 3600_000).toISOString(),
    }));
    const simulated = new SimulatedSource({ speed: 1e9, nodes: () => nodes });
    await simulated.applyPacks([
      { type: 'CNI', name: 'calico', version: '3.28.0' },
      { type: 'CSI', name: 'csi-local', version: '1.0.0' },
    ]);
    // Every log has `lines` lines, all of them within the last hour (so namespace logs keep them all).
    const source = new SimulatedLogSource(simulated, { lines, historyMs: 50 * 60_000 });
    const agent = startAgent({
      bus,
      log,
      clusterId,
      tenantId,
      source: simulated,
      parts: [createLogsPart({ source: () => source })],
    });

    const identity = new Identity({ sub: 'bench', tenantId, projects: { p: 'editor' } });
    const gql = async (query: string, variables: Record<string, unknown>) => {
      const response = await fetch(service.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [INTERNAL_IDENTITY_HEADER]: await signInternalIdentity(identity, DEV_INTERNAL_SECRET),
        },
        body: JSON.stringify({ query, variables }),
      });
      return ((await response.json()) as { data: Record<string, any> }).data;
    };

    try {
      const pid = service.child.pid!;
      await new Promise((r) => setTimeout(r, 500));
      const atRest = rssMiB(pid);

      const collecting = sampleRss(pid);
      const started = performance.now();
      const requested = await gql(
        `mutation($c: ID!) { requestClusterLogs(input: { clusterId: $c }) { bundle { id } userErrors { message } } }`,
        { c: clusterId },
      );
      const id = requested.requestClusterLogs.bundle.id as string;
      let bundle: { status: string; message: string | null; sizeBytes: number; downloadUrl: string };
      for (;;) {
        bundle = (await gql(`query($id: ID!) { logBundle(id: $id) { status message sizeBytes downloadUrl } }`, { id }))
          .logBundle;
        if (bundle.status === 'READY' || bundle.status === 'FAILED') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const collectMs = performance.now() - started;
      const peakCollecting = collecting.stop();
      expect(bundle.message).toBeNull();

      const downloading = sampleRss(pid);
      const downloadStarted = performance.now();
      const response = await fetch(bundle.downloadUrl);
      let downloaded = 0;
      for await (const chunk of response.body!) downloaded += (chunk as Uint8Array).length;
      const downloadMs = performance.now() - downloadStarted;
      const peakDownloading = downloading.stop();
      expect(downloaded).toBe(bundle.sizeBytes);

      // The service logs what it archived: files, lines, bytes.
      const ready = service.output.map(jsonLine).find((l) => l.msg === 'log bundle ready');
      const row = {
        linesPerLog: lines,
        nodes: NODES,
        files: ready?.files,
        lines: ready?.lines,
        uncompressed: mib(ready?.uncompressedBytes ?? 0),
        archive: mib(bundle.sizeBytes),
        collectAndArchive: `${(collectMs / 1000).toFixed(2)} s`,
        throughput: `${((ready?.uncompressedBytes ?? 0) / 1024 / 1024 / (collectMs / 1000)).toFixed(1)} MiB/s`,
        download: `${(downloadMs / 1000).toFixed(2)} s`,
        rssAtRest: `${atRest.toFixed(0)} MiB`,
        rssPeakCollecting: `${peakCollecting.toFixed(0)} MiB`,
        rssPeakDownloading: `${peakDownloading.toFixed(0)} MiB`,
      };
      results.push(row);
      console.log(`\nlogs bundle, ${NODES} nodes x ${lines} lines per log:\n${JSON.stringify(row, null, 2)}`);
    } finally {
      await agent.stop();
      await bus.close();
      await service.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  afterAll(() => {
    if (results.length > 1) {
      console.log('\nlogs service memory against bundle size (RSS: a fresh process per size):');
      console.table(
        results.map((r) => ({
          linesPerLog: r.linesPerLog,
          uncompressed: r.uncompressed,
          archive: r.archive,
          time: r.collectAndArchive,
          atRest: r.rssAtRest,
          peakCollecting: r.rssPeakCollecting,
          peakDownloading: r.rssPeakDownloading,
        })),
      );
    }
  });
});
