/**
 * A cluster's health as a pure state machine: no I/O, no clock of its own.
 *
 * Three factors feed it: the agent's heartbeats (HEARTBEAT), the nodes' conditions
 * (NODE_CONDITION) and usage (METRICS). Each report says which checks fail now (`findingsOf`);
 * `afterReport` keeps, for every failing check, since when it has been failing; `evaluate` turns
 * that into a status at a given time:
 *
 * - UNKNOWN until the first report;
 * - a failing check is PROGRESSING while it has failed for less than its threshold (a blip, a
 *   node joining after a scale-up), and UNHEALTHY once it has failed for longer;
 * - a late heartbeat (several intervals without one) is PROGRESSING; none for longer than the
 *   heartbeat timeout is UNHEALTHY, and then the node conditions and metrics last reported are
 *   shown as stale;
 * - the worst of the checks is the cluster's status; no failing check is HEALTHY.
 *
 * `evaluate` also says when the status can next change without a report (`nextEvaluationAt`),
 * so the caller sets one timer instead of scanning every cluster.
 */

export const HealthStatus = {
  HEALTHY: 'HEALTHY',
  PROGRESSING: 'PROGRESSING',
  UNHEALTHY: 'UNHEALTHY',
  UNKNOWN: 'UNKNOWN',
} as const;
export type HealthStatus = (typeof HealthStatus)[keyof typeof HealthStatus];

export const HealthFactor = { HEARTBEAT: 'HEARTBEAT', NODE_CONDITION: 'NODE_CONDITION', METRICS: 'METRICS' } as const;
export type HealthFactor = (typeof HealthFactor)[keyof typeof HealthFactor];

/** Thresholds of the checks. */
export interface HealthPolicy {
  /** No heartbeat for this long is UNHEALTHY. @default 10 minutes */
  heartbeatTimeoutMs: number;
  /** A heartbeat missing for this many of the agent's intervals is late (PROGRESSING). @default 3 */
  lateAfterIntervals: number;
  /** A node condition failing for this long is UNHEALTHY. @default 5 minutes */
  nodeConditionThresholdMs: number;
  /** Usage over its threshold for this long is UNHEALTHY. @default 10 minutes */
  metricsWindowMs: number;
  /** Shares (0..1) above which usage fails its check. @default 0.9 each */
  cpuThreshold: number;
  memoryThreshold: number;
  diskThreshold: number;
}

export const DEFAULT_POLICY: HealthPolicy = {
  heartbeatTimeoutMs: 10 * 60_000,
  lateAfterIntervals: 3,
  nodeConditionThresholdMs: 5 * 60_000,
  metricsWindowMs: 10 * 60_000,
  cpuThreshold: 0.9,
  memoryThreshold: 0.9,
  diskThreshold: 0.9,
};

/** A check that a report shows failing. `key` names the check (`node:w-1:MemoryPressure`, `metrics:cpu`). */
export interface Finding {
  key: string;
  factor: HealthFactor;
  message: string;
}

/** A failing check and since when it has been failing (ms since the epoch). */
export interface FailingCheck extends Finding {
  since: number;
}

/** What the health of a cluster is computed from. */
export interface HealthState {
  /** When the last report arrived (the platform's clock); null before the first. */
  lastHeartbeatAt: number | null;
  /** The agent's report interval, as it last said. */
  intervalMs: number;
  /** The checks failing as of the last report that observed the nodes, by key. */
  failing: readonly FailingCheck[];
}

export const INITIAL_STATE: HealthState = { lastHeartbeatAt: null, intervalMs: 30_000, failing: [] };

export interface HealthReason {
  factor: HealthFactor;
  message: string;
  /** When the check started failing. */
  since: number | null;
  /** Last known before heartbeats stopped, not current. */
  stale: boolean;
}

export interface Health {
  status: HealthStatus;
  reasons: HealthReason[];
  /** The node conditions and metrics behind it were reported before heartbeats stopped. */
  stale: boolean;
  /** When the status may change if no report comes first; null when only a report can change it. */
  nextEvaluationAt: number | null;
}

/** A node condition as reported (status as the GraphQL ConditionStatus). */
export interface ConditionFacts {
  type: string;
  status: 'TRUE' | 'FALSE' | 'UNKNOWN';
  reason: string | null;
  message: string | null;
}

/** What the checks need of a node. */
export interface NodeFacts {
  name: string;
  conditions: readonly ConditionFacts[];
  /** Root filesystem used and total bytes, when known. */
  diskUsedBytes: number | null;
  diskTotalBytes: number | null;
}

/** What the checks need of the cluster's usage (worker nodes, or all nodes when it has no workers). */
export interface UsageFacts {
  /** Which nodes the shares are of, for messages: "worker nodes" or "nodes". */
  label: string;
  /** Shares 0..1; null when no node of the scope reported metrics. */
  cpu: number | null;
  memory: number | null;
}

/**
 * The check that fails while the agent has not reported a node: its first report (a heartbeat
 * before its first observation), or a report of no node at all. PROGRESSING at first, UNHEALTHY
 * if it lasts longer than a node condition may.
 */
export const NO_NODE_YET: Finding = {
  key: 'nodes:none',
  factor: HealthFactor.NODE_CONDITION,
  message: 'no node observed yet: waiting for the first node report',
};

const percent = (share: number) => `${Math.round(share * 100)}%`;

/** `: reason: message` of a failing condition (either may be empty or null), or nothing. */
function detailOf(condition: ConditionFacts): string {
  const { reason, message } = condition;
  if (reason && message) return `: ${reason}: ${message}`;
  if (reason) return `: ${reason}`;
  if (message) return `: ${message}`;
  return '';
}

/**
 * The checks a report shows failing. Messages name the check and its threshold, not the
 * current value, so that they stay the same while the check keeps failing (a change of reason
 * is a change of health, published to watchers).
 */
export function findingsOf(nodes: readonly NodeFacts[], usage: UsageFacts, policy: HealthPolicy): Finding[] {
  // A cluster with no node observed is not healthy, whatever else the report says.
  if (nodes.length === 0) return [NO_NODE_YET];
  const findings: Finding[] = [];
  for (const node of nodes) {
    for (const condition of node.conditions) {
      if (condition.type === 'Ready') {
        if (condition.status !== 'TRUE') {
          findings.push({
            key: `node:${node.name}:Ready`,
            factor: HealthFactor.NODE_CONDITION,
            message: `node ${node.name} is not Ready (${condition.status})${detailOf(condition)}`,
          });
        }
      } else if (condition.status === 'TRUE') {
        // MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable, and node-problem-detector's
        // conditions: all of them mean trouble when true.
        findings.push({
          key: `node:${node.name}:${condition.type}`,
          factor: HealthFactor.NODE_CONDITION,
          message: `node ${node.name} has ${condition.type}${detailOf(condition)}`,
        });
      }
    }
    if (node.diskUsedBytes !== null && node.diskTotalBytes) {
      if (node.diskUsedBytes / node.diskTotalBytes > policy.diskThreshold) {
        findings.push({
          key: `metrics:disk:${node.name}`,
          factor: HealthFactor.METRICS,
          message: `disk usage of node ${node.name} is above ${percent(policy.diskThreshold)}`,
        });
      }
    }
  }
  if (usage.cpu !== null && usage.cpu > policy.cpuThreshold) {
    findings.push({
      key: 'metrics:cpu',
      factor: HealthFactor.METRICS,
      message: `CPU usage of the ${usage.label} is above ${percent(policy.cpuThreshold)}`,
    });
  }
  if (usage.memory !== null && usage.memory > policy.memoryThreshold) {
    findings.push({
      key: 'metrics:memory',
      factor: HealthFactor.METRICS,
      message: `memory usage of the ${usage.label} is above ${percent(policy.memoryThreshold)}`,
    });
  }
  return findings;
}

/**
 * The state after a report that arrived at `at`. With findings (the nodes were observed), a
 * check still failing keeps its `since`, a new one starts now, and one that passes is gone;
 * without (the report is a bare heartbeat), the failing checks stay as they were.
 */
export function afterReport(
  state: HealthState,
  at: number,
  intervalMs: number,
  findings: readonly Finding[] | null,
): HealthState {
  // The first report is a bare heartbeat: nothing is known of the nodes yet.
  if (state.lastHeartbeatAt === null && findings === null) findings = [NO_NODE_YET];
  let failing = state.failing;
  // Nothing failing before or now: keep the same (empty) list.
  if (findings !== null && (findings.length > 0 || failing.length > 0)) {
    const before = new Map(state.failing.map((c) => [c.key, c]));
    failing = findings
      .map((f) => {
        const previous = before.get(f.key);
        return { ...f, since: previous?.since ?? at };
      })
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
  return { lastHeartbeatAt: Math.max(at, state.lastHeartbeatAt ?? at), intervalMs, failing };
}

const thresholdOf = (factor: HealthFactor, policy: HealthPolicy) =>
  factor === HealthFactor.NODE_CONDITION ? policy.nodeConditionThresholdMs : policy.metricsWindowMs;

const worse = (a: HealthStatus, b: HealthStatus): HealthStatus => {
  const rank = { HEALTHY: 0, UNKNOWN: 1, PROGRESSING: 2, UNHEALTHY: 3 } as const;
  return rank[b] > rank[a] ? b : a;
};

function duration(ms: number): string {
  if (ms % 3600_000 === 0) return `${ms / 3600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

/** The health of a cluster at `now`. */
export function evaluate(state: HealthState, now: number, policy: HealthPolicy): Health {
  const last = state.lastHeartbeatAt;
  if (last === null) {
    return {
      status: HealthStatus.UNKNOWN,
      reasons: [
        { factor: HealthFactor.HEARTBEAT, message: 'no report from the cluster agent yet', since: null, stale: false },
      ],
      stale: false,
      nextEvaluationAt: null,
    };
  }
  const timeoutAt = last + policy.heartbeatTimeoutMs;
  if (now >= timeoutAt) {
    return {
      status: HealthStatus.UNHEALTHY,
      reasons: [
        {
          factor: HealthFactor.HEARTBEAT,
          message: `no heartbeat for longer than ${duration(policy.heartbeatTimeoutMs)}: node conditions and metrics are as last reported`,
          since: last,
          stale: false,
        },
        ...state.failing.map((c) => ({ factor: c.factor, message: c.message, since: c.since, stale: true })),
      ],
      stale: true,
      nextEvaluationAt: null,
    };
  }

  let status: HealthStatus = HealthStatus.HEALTHY;
  const reasons: HealthReason[] = [];
  let next = timeoutAt;
  const lateAt = last + policy.lateAfterIntervals * state.intervalMs;
  if (lateAt < timeoutAt) {
    if (now >= lateAt) {
      status = HealthStatus.PROGRESSING;
      reasons.push({
        factor: HealthFactor.HEARTBEAT,
        message: `heartbeat late: none for more than ${policy.lateAfterIntervals} intervals of ${duration(state.intervalMs)}`,
        since: last,
        stale: false,
      });
    } else {
      next = Math.min(next, lateAt);
    }
  }
  for (const check of state.failing) {
    const dueAt = check.since + thresholdOf(check.factor, policy);
    if (now >= dueAt) status = worse(status, HealthStatus.UNHEALTHY);
    else {
      status = worse(status, HealthStatus.PROGRESSING);
      next = Math.min(next, dueAt);
    }
    reasons.push({ factor: check.factor, message: check.message, since: check.since, stale: false });
  }
  return { status, reasons, stale: false, nextEvaluationAt: next };
}

/** Whether two healths would read the same to a watcher (status, staleness and reasons). */
export function sameHealth(
  a: Pick<Health, 'status' | 'reasons' | 'stale'>,
  b: Pick<Health, 'status' | 'reasons' | 'stale'>,
): boolean {
  if (a.status !== b.status || a.stale !== b.stale || a.reasons.length !== b.reasons.length) return false;
  return a.reasons.every((r, i) => {
    const o = b.reasons[i]!;
    return r.factor === o.factor && r.message === o.message && r.since === o.since && r.stale === o.stale;
  });
}
