import { LOG_PART_FOLDERS, NODE_LOG_FILES, PLATFORM_NAMESPACE, type ManifestResource } from '@fleetgraph/schema';
import type { SimulatedSource } from '../simulated.js';
import type { LogFile, LogSelection, LogSource, LogSnapshot } from './log-source.js';
import { hash, manifestResources, simulateCluster, type LogStyle, type SimulatedCluster } from './simulated-cluster.js';

/** How many lines each simulated log holds before a bundle's limits apply. */
export interface SimulatedLogLines {
  /** A node's system journal: more than the 10,000 lines a bundle keeps. @default 15000 */
  system: number;
  /** A node's agent log. @default 4000 */
  agent: number;
  /** A node's cloud-init log. @default 800 */
  cloudInit: number;
  /** Each container's log. @default 3000 */
  container: number;
}

export const DEFAULT_SIMULATED_LOG_LINES: SimulatedLogLines = {
  system: 15_000,
  agent: 4_000,
  cloudInit: 800,
  container: 3_000,
};

export interface SimulatedLogOptions {
  /** Lines of each kind of log; one number sets them all. @default DEFAULT_SIMULATED_LOG_LINES */
  lines?: Partial<SimulatedLogLines> | number;
  /** How far back the simulated logs reach; their lines are spread evenly up to now. @default 2 hours */
  historyMs?: number;
  /** The kubelet version nodes report. @default 'v1.30.4' */
  kubernetesVersion?: string;
  /** The clock. @default () => new Date() */
  now?: () => Date;
}

/** One simulated log: `total` lines evenly spread over `[startMs, endMs]`, line `i` written by `line(i, time)`. */
interface SimulatedLog {
  total: number;
  startMs: number;
  endMs: number;
  line: (n: number, iso: string) => string;
}

/**
 * The logs and resources of a simulated cluster (the local cloud's), all derived from the
 * `SimulatedSource`'s nodes and installed packs through `simulateCluster`, so that the manifest
 * lists exactly the pods and nodes whose logs the archive holds. Logs are generated line by line
 * as they are read: a bundle of any size never sits in memory.
 */
export class SimulatedLogSource implements LogSource {
  private readonly lines: SimulatedLogLines;

  constructor(
    private readonly source: SimulatedSource,
    private readonly options: SimulatedLogOptions = {},
  ) {
    const lines = options.lines;
    this.lines =
      typeof lines === 'number'
        ? { system: lines, agent: lines, cloudInit: lines, container: lines }
        : { ...DEFAULT_SIMULATED_LOG_LINES, ...lines };
  }

  open(selection: LogSelection): LogSnapshot {
    const now = this.options.now?.() ?? new Date();
    const cluster = simulateCluster(this.source.nodes(), this.source.installedPacks(), {
      now,
      kubernetesVersion: this.options.kubernetesVersion,
    });
    const endMs = now.getTime();
    const startMs = endMs - (this.options.historyMs ?? 2 * 3600_000);
    return {
      nodes: cluster.nodes.length,
      files: () => this.files(cluster, selection, startMs, endMs),
      resources: (): Iterable<ManifestResource> => manifestResources(cluster),
    };
  }

  private *files(
    cluster: SimulatedCluster,
    selection: LogSelection,
    startMs: number,
    endMs: number,
  ): Generator<LogFile> {
    const { parts, tailLines } = selection;
    const window =
      (log: SimulatedLog, sinceMs = -Infinity): LogFile['lines'] =>
      () =>
        linesOf(log, tailLines, sinceMs);
    const podsIn = (namespace: string) =>
      cluster.pods.filter((p) => p.namespace === namespace).sort((a, b) => a.name.localeCompare(b.name));
    const containerLog = (pod: SimulatedCluster['pods'][number], container: string): SimulatedLog => ({
      total: this.lines.container,
      startMs: Math.max(startMs, Math.min(Date.parse(pod.startedAt), endMs - 60_000)),
      endMs,
      line: containerLine(pod.logStyle, pod.name, container),
    });
    if (parts.kubeSystem) {
      for (const pod of podsIn('kube-system')) {
        for (const container of pod.containers)
          yield {
            path: `${LOG_PART_FOLDERS.kubeSystem}/${pod.name}/${container}.log`,
            lines: window(containerLog(pod, container)),
          };
      }
    }
    if (parts.namespaceLogs) {
      const sinceMs = selection.namespaceSince.getTime();
      for (const pod of podsIn(PLATFORM_NAMESPACE)) {
        for (const container of pod.containers)
          yield {
            path: `${LOG_PART_FOLDERS.namespaceLogs}/${pod.name}/${container}.log`,
            lines: window(containerLog(pod, container), sinceMs),
          };
      }
    }
    if (parts.nodeLogs) {
      for (const node of cluster.nodes) {
        const folder = `${LOG_PART_FOLDERS.nodeLogs}/${segment(node.name)}`;
        const logs: Record<(typeof NODE_LOG_FILES)[number], SimulatedLog> = {
          'agent.log': { total: this.lines.agent, startMs, endMs, line: agentLine(node.name) },
          'system.log': { total: this.lines.system, startMs, endMs, line: systemLine(node.name) },
          'cloud-init.log': {
            total: this.lines.cloudInit,
            startMs,
            endMs: startMs + (endMs - startMs) / 20,
            line: cloudInitLine(node.name),
          },
        };
        for (const file of NODE_LOG_FILES) yield { path: `${folder}/${file}`, lines: window(logs[file]) };
      }
    }
  }
}

/** A path segment the archive accepts. */
const segment = (name: string) => name.replace(/[^A-Za-z0-9_.-]/g, '_');

/** The lines of a log within the limits: the last `tail`, and none before `sinceMs`. */
function* linesOf(log: SimulatedLog, tail: number, sinceMs: number): Generator<string> {
  const { total, startMs, endMs } = log;
  const step = (endMs - startMs) / Math.max(total, 1);
  // Line i (0-based) is written at startMs + (i + 1) * step.
  const firstSince = sinceMs === -Infinity ? 0 : Math.max(0, Math.ceil((sinceMs - startMs) / step - 1));
  for (let i = Math.max(0, total - tail, firstSince); i < total; i++) {
    const ms = startMs + (i + 1) * step;
    if (ms < sinceMs) continue;
    yield log.line(i + 1, new Date(ms).toISOString());
  }
}

const pick = <T>(list: readonly T[], n: number, seed: number): T => list[(n * 7 + seed) % list.length]!;

const SYSTEM_UNITS = [
  ['kubelet', 'Successfully probed container readiness'],
  ['kubelet', 'SyncLoop (PLEG): event for pod'],
  ['containerd', 'StartContainer returns successfully'],
  ['systemd', 'Started Session of user ubuntu.'],
  ['kubelet', 'Volume detached for volume "kube-api-access"'],
  ['kernel', 'IPv6: ADDRCONF(NETDEV_CHANGE): cali1a2b3c4d5e6: link becomes ready'],
  ['containerd', 'RunPodSandbox returns sandbox id'],
  ['systemd-networkd', 'eth0: DHCPv4 address renewed'],
] as const;

function systemLine(node: string) {
  const seed = hash(node);
  return (n: number, iso: string) => {
    const [unit, message] = pick(SYSTEM_UNITS, n, seed);
    return `${iso} ${node} ${unit}[${1000 + (seed % 8000)}]: ${message} seq=${n}`;
  };
}

const AGENT_MESSAGES = [
  'heartbeat sent',
  'node conditions reported',
  'usage sample reported',
  'services reported',
  'pack state reconciled',
] as const;
function agentLine(node: string) {
  const seed = hash(node);
  return (n: number, iso: string) =>
    `{"level":30,"time":"${iso}","node":"${node}","msg":"${pick(AGENT_MESSAGES, n, seed)}","seq":${n}}`;
}

const CLOUD_INIT = [
  "util.py[DEBUG]: Running command ['systemctl', 'daemon-reload'] with allowed return codes [0]",
  'cc_package_update_upgrade_install.py[DEBUG]: Upgrading packages',
  'handlers.py[DEBUG]: finish: modules-config/config-runcmd: SUCCESS',
  'util.py[DEBUG]: Writing to /etc/kubernetes/kubeadm.yaml - wb: [600] 2417 bytes',
  'stages.py[DEBUG]: Running module write-files',
] as const;
function cloudInitLine(node: string) {
  const seed = hash(node);
  return (n: number, iso: string) => `${iso} - ${pick(CLOUD_INIT, n, seed)} seq=${n}`;
}

const KLOG = [
  ['reflector.go:351', 'Watch close - *v1.Pod total 12 items received'],
  ['controller.go:624', 'quota admission added evaluator for: endpoints'],
  ['leaderelection.go:260', 'successfully renewed lease'],
  ['proxier.go:796', 'SyncProxyRules complete'],
  ['event.go:307', 'Event occurred'],
] as const;
const JSON_MESSAGES = ['request served', 'reconciled', 'watch restarted', 'cache synced', 'metrics scraped'] as const;

/** A container's line, with the timestamp `kubectl logs --timestamps` puts first. */
function containerLine(style: LogStyle, pod: string, container: string) {
  const seed = hash(`${pod}/${container}`);
  switch (style) {
    case 'klog':
      return (n: number, iso: string) => {
        const [where, message] = pick(KLOG, n, seed);
        return (
          `${iso} I${iso.slice(5, 7)}${iso.slice(8, 10)} ${iso.slice(11, 23)}000       1 ` +
          `${where}] "${message}" seq=${n}`
        );
      };
    case 'etcd':
      return (n: number, iso: string) =>
        `${iso} {"level":"info","ts":"${iso}","caller":"mvcc/index.go:214",` +
        `"msg":"compact tree index","revision":${n * 3},"seq":${n}}`;
    case 'coredns':
      return (n: number, iso: string) =>
        `${iso} [INFO] 10.244.${seed % 250}.${n % 250}:${40000 + (n % 20000)} - ${n % 65536} ` +
        '"A IN kubernetes.default.svc.cluster.local. udp 54 false 512" ' +
        `NOERROR qr,aa,rd 106 0.000${100 + (n % 800)}s seq=${n}`;
    case 'calico':
      return (n: number, iso: string) =>
        `${iso} [INFO][${seed % 9000}] felix/int_dataplane.go ${1000 + (n % 900)}: ` +
        `Finished applying updates to dataplane. seq=${n}`;
    case 'json':
      return (n: number, iso: string) =>
        `${iso} {"level":"info","time":"${iso}","container":"${container}",` +
        `"msg":"${pick(JSON_MESSAGES, n, seed)}","seq":${n}}`;
  }
}
