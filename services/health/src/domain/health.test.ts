import { describe, expect, it } from 'vitest';
import {
  afterReport,
  type UsageFacts,
  DEFAULT_POLICY,
  evaluate,
  findingsOf,
  HealthFactor,
  INITIAL_STATE,
  sameHealth,
  type ConditionFacts,
  type Finding,
  type HealthState,
  type NodeFacts,
} from './health.js';

const MIN = 60_000;
const T0 = Date.UTC(2025, 2, 4, 12);
const at = (minutes: number) => T0 + minutes * MIN;
/** Default policy: heartbeat timeout 10 min, late after 3 intervals, node conditions 5 min, metrics 10 min, 90%. */
const policy = DEFAULT_POLICY;

const pressure: Finding = {
  key: 'node:w-1:MemoryPressure',
  factor: 'NODE_CONDITION',
  message: 'node w-1 has MemoryPressure',
};
const notReady: Finding = { key: 'node:w-3:Ready', factor: 'NODE_CONDITION', message: 'node w-3 is not Ready (FALSE)' };
const hotCpu: Finding = {
  key: 'metrics:cpu',
  factor: 'METRICS',
  message: 'CPU usage of the worker nodes is above 90%',
};

/** A report every 30 s from `from` to `to` minutes (inclusive) with the same findings. */
const reports = (from: number, to: number, findings: Finding[] | null) =>
  Array.from({ length: Math.round((to - from) * 2) + 1 }, (_, i) => ({ at: from + i / 2, findings }));

type Step = { at: number; findings: Finding[] | null };
const replay = (steps: Step[], state: HealthState = INITIAL_STATE) =>
  steps.reduce((s, step) => afterReport(s, at(step.at), 30_000, step.findings), state);

describe('health state machine', () => {
  it.each<{ name: string; steps: Step[]; now: number; status: string; factors: string[]; stale?: boolean }>([
    { name: 'UNKNOWN before the first report', steps: [], now: 0, status: 'UNKNOWN', factors: ['HEARTBEAT'] },
    { name: 'HEALTHY on a clean report', steps: reports(0, 0, []), now: 0.2, status: 'HEALTHY', factors: [] },
    // HEARTBEAT
    {
      name: 'HEALTHY while heartbeats come every interval',
      steps: reports(0, 20, []),
      now: 20.4,
      status: 'HEALTHY',
      factors: [],
    },
    {
      name: 'PROGRESSING when the heartbeat is late (3 intervals)',
      steps: reports(0, 2, []),
      now: 3.6,
      status: 'PROGRESSING',
      factors: ['HEARTBEAT'],
    },
    {
      name: 'still PROGRESSING just under the heartbeat timeout',
      steps: reports(0, 2, []),
      now: 11.9,
      status: 'PROGRESSING',
      factors: ['HEARTBEAT'],
    },
    {
      name: 'UNHEALTHY once no heartbeat came for the timeout',
      steps: reports(0, 2, []),
      now: 12,
      status: 'UNHEALTHY',
      factors: ['HEARTBEAT'],
      stale: true,
    },
    {
      name: 'HEALTHY again when heartbeats return',
      steps: [...reports(0, 2, []), ...reports(30, 30, [])],
      now: 30.1,
      status: 'HEALTHY',
      factors: [],
    },
    {
      name: 'PROGRESSING while the first reports are bare heartbeats (no node yet)',
      steps: reports(0, 1, null),
      now: 1,
      status: 'PROGRESSING',
      factors: ['NODE_CONDITION'],
    },
    {
      name: 'HEALTHY once the first nodes are reported',
      steps: [...reports(0, 1, null), ...reports(1.5, 1.5, [])],
      now: 1.6,
      status: 'HEALTHY',
      factors: [],
    },
    {
      name: 'UNHEALTHY when no node was reported for the node threshold',
      steps: reports(0, 5, null),
      now: 5,
      status: 'UNHEALTHY',
      factors: ['NODE_CONDITION'],
    },
    {
      name: 'a bare heartbeat keeps the agent alive',
      steps: [...reports(0, 0, []), ...reports(0.5, 20, null)],
      now: 20.2,
      status: 'HEALTHY',
      factors: [],
    },
    // NODE_CONDITION
    {
      name: 'PROGRESSING when a node condition starts failing',
      steps: reports(0, 1, [pressure]),
      now: 1,
      status: 'PROGRESSING',
      factors: ['NODE_CONDITION'],
    },
    {
      name: 'still PROGRESSING just under the node threshold',
      steps: reports(0, 4.5, [pressure]),
      now: 4.9,
      status: 'PROGRESSING',
      factors: ['NODE_CONDITION'],
    },
    {
      name: 'UNHEALTHY once a node condition failed for its threshold',
      steps: reports(0, 5, [pressure]),
      now: 5,
      status: 'UNHEALTHY',
      factors: ['NODE_CONDITION'],
    },
    {
      name: 'no flapping: a node joining for 2 minutes stays PROGRESSING, then HEALTHY',
      steps: [...reports(0, 2, [notReady]), ...reports(2.5, 6, [])],
      now: 6,
      status: 'HEALTHY',
      factors: [],
    },
    {
      name: 'recovery: HEALTHY as soon as the condition clears',
      steps: [...reports(0, 8, [pressure]), ...reports(8.5, 8.5, [])],
      now: 8.5,
      status: 'HEALTHY',
      factors: [],
    },
    {
      name: 'a condition failing again starts its threshold again',
      steps: [...reports(0, 4, [pressure]), ...reports(4.5, 5, []), ...reports(5.5, 9, [pressure])],
      now: 9,
      status: 'PROGRESSING',
      factors: ['NODE_CONDITION'],
    },
    // METRICS
    {
      name: 'PROGRESSING while CPU is over its threshold for less than the window',
      steps: reports(0, 9.5, [hotCpu]),
      now: 9.5,
      status: 'PROGRESSING',
      factors: ['METRICS'],
    },
    {
      name: 'UNHEALTHY once CPU was over its threshold for the window',
      steps: reports(0, 10, [hotCpu]),
      now: 10,
      status: 'UNHEALTHY',
      factors: ['METRICS'],
    },
    {
      name: 'no flapping: a 3-minute CPU spike never reaches UNHEALTHY',
      steps: [...reports(0, 3, [hotCpu]), ...reports(3.5, 15, [])],
      now: 15,
      status: 'HEALTHY',
      factors: [],
    },
    // Several
    {
      name: 'the worst check wins, every reason listed',
      steps: [...reports(0, 4, [hotCpu]), ...reports(4.5, 6, [hotCpu, pressure])],
      now: 12,
      status: 'UNHEALTHY',
      factors: ['HEARTBEAT', 'METRICS', 'NODE_CONDITION'],
    },
    {
      name: 'heartbeat loss makes failing checks stale',
      steps: reports(0, 1, [pressure]),
      now: 11,
      status: 'UNHEALTHY',
      factors: ['HEARTBEAT', 'NODE_CONDITION'],
      stale: true,
    },
    {
      name: 'a check failing through a heartbeat loss keeps its start on return',
      steps: [...reports(0, 1, [pressure]), ...reports(20, 20, [pressure])],
      now: 20,
      status: 'UNHEALTHY',
      factors: ['NODE_CONDITION'],
    },
    {
      name: 'a bare heartbeat keeps the failing checks as they were',
      steps: [...reports(0, 0, [pressure]), ...reports(0.5, 6, null)],
      now: 6,
      status: 'UNHEALTHY',
      factors: ['NODE_CONDITION'],
    },
  ])('$name', ({ steps, now, status, factors, stale = false }) => {
    const health = evaluate(replay(steps), at(now), policy);
    expect(health.status).toBe(status);
    expect(health.reasons.map((r) => r.factor)).toEqual(factors);
    expect(health.stale).toBe(stale);
    expect(health.reasons.every((r) => r.stale === (stale && r.factor !== 'HEARTBEAT'))).toBe(true);
  });

  it('should say when the status next changes without a report', () => {
    const healthy = evaluate(replay(reports(0, 0, [])), at(0), policy);
    expect(healthy.nextEvaluationAt).toBe(at(1.5)); // late after 3 x 30 s
    const late = evaluate(replay(reports(0, 0, [])), at(2), policy);
    expect(late.nextEvaluationAt).toBe(at(10)); // the heartbeat timeout
    const progressing = evaluate(replay(reports(0, 1, [pressure])), at(1), policy);
    expect(progressing.nextEvaluationAt).toBe(at(2.5)); // late before the node threshold at 5
    const crossing = evaluate(replay(reports(0, 4, [pressure])), at(4.2), policy);
    expect(crossing.nextEvaluationAt).toBe(at(5));
    expect(evaluate(replay(reports(0, 0, [])), at(10), policy).nextEvaluationAt).toBeNull();
    expect(evaluate(INITIAL_STATE, at(0), policy).nextEvaluationAt).toBeNull();
  });

  it('should honour a shortened heartbeat timeout', () => {
    const short = { ...policy, heartbeatTimeoutMs: 5_000, lateAfterIntervals: 3 };
    const state = afterReport(INITIAL_STATE, at(0), 1_000, []);
    expect(evaluate(state, at(0) + 2_000, short).status).toBe('HEALTHY');
    expect(evaluate(state, at(0) + 3_500, short).status).toBe('PROGRESSING');
    expect(evaluate(state, at(0) + 5_000, short)).toMatchObject({
      status: 'UNHEALTHY',
      reasons: [
        {
          factor: 'HEARTBEAT',
          message: 'no heartbeat for longer than 5 s: node conditions and metrics are as last reported',
        },
      ],
    });
  });

  it('should keep reason messages stable while a check keeps failing', () => {
    const a = evaluate(replay(reports(0, 1, [pressure])), at(1), policy);
    const b = evaluate(replay(reports(0, 3, [pressure])), at(3), policy);
    expect(sameHealth(a, b)).toBe(true);
    const c = evaluate(replay(reports(0, 6, [pressure])), at(6), policy);
    expect(sameHealth(b, c)).toBe(false);
  });
});

describe('findingsOf', () => {
  const ok: ConditionFacts[] = [
    { type: 'Ready', status: 'TRUE', reason: 'KubeletReady', message: 'kubelet is posting ready status' },
    { type: 'MemoryPressure', status: 'FALSE', reason: null, message: null },
    { type: 'DiskPressure', status: 'FALSE', reason: null, message: null },
    { type: 'PIDPressure', status: 'FALSE', reason: null, message: null },
    { type: 'NetworkUnavailable', status: 'FALSE', reason: null, message: null },
  ];
  const node = (
    name: string,
    change: Partial<Record<string, ConditionFacts['status']>> = {},
    disk: [number, number] | null = null,
  ): NodeFacts => ({
    name,
    conditions: ok.map((c) =>
      change[c.type] ? { ...c, status: change[c.type]!, reason: `Reason${c.type}`, message: 'details' } : c,
    ),
    diskUsedBytes: disk?.[0] ?? null,
    diskTotalBytes: disk?.[1] ?? null,
  });
  const calm: UsageFacts = { label: 'worker nodes', cpu: 0.4, memory: 0.5 };

  it.each<{ name: string; nodes: NodeFacts[]; usage?: UsageFacts; keys: string[] }>([
    { name: 'no node at all', nodes: [], keys: ['nodes:none'] },
    { name: 'nothing on healthy nodes', nodes: [node('w-1'), node('w-2')], keys: [] },
    { name: 'a node that is not Ready', nodes: [node('w-1', { Ready: 'FALSE' })], keys: ['node:w-1:Ready'] },
    { name: 'a node whose Ready is Unknown', nodes: [node('w-1', { Ready: 'UNKNOWN' })], keys: ['node:w-1:Ready'] },
    {
      name: 'each pressure condition',
      nodes: [node('w-1', { MemoryPressure: 'TRUE' }), node('w-2', { DiskPressure: 'TRUE', PIDPressure: 'TRUE' })],
      keys: ['node:w-1:MemoryPressure', 'node:w-2:DiskPressure', 'node:w-2:PIDPressure'],
    },
    {
      name: 'an unavailable network',
      nodes: [node('w-1', { NetworkUnavailable: 'TRUE' })],
      keys: ['node:w-1:NetworkUnavailable'],
    },
    {
      name: 'not a pressure condition that is merely Unknown',
      nodes: [node('w-1', { MemoryPressure: 'UNKNOWN' })],
      keys: [],
    },
    { name: 'CPU over the threshold', nodes: [node('w-1')], usage: { ...calm, cpu: 0.91 }, keys: ['metrics:cpu'] },
    {
      name: 'memory over the threshold',
      nodes: [node('w-1')],
      usage: { ...calm, memory: 0.95 },
      keys: ['metrics:memory'],
    },
    { name: 'not usage at the threshold', nodes: [node('w-1')], usage: { ...calm, cpu: 0.9, memory: 0.9 }, keys: [] },
    { name: 'not unknown usage', nodes: [node('w-1')], usage: { label: 'nodes', cpu: null, memory: null }, keys: [] },
    {
      name: 'a nearly full disk',
      nodes: [node('w-1', {}, [95, 100]), node('w-2', {}, [50, 100])],
      keys: ['metrics:disk:w-1'],
    },
  ])('should find $name', ({ nodes, usage = calm, keys }) => {
    const findings = findingsOf(nodes, usage, policy);
    expect(findings.map((f) => f.key)).toEqual(keys);
    for (const f of findings)
      expect(f.factor).toBe(f.key.startsWith('node') ? HealthFactor.NODE_CONDITION : HealthFactor.METRICS);
  });

  it('should explain a finding for a person', () => {
    expect(findingsOf([node('w-1', { MemoryPressure: 'TRUE' })], calm, policy)).toEqual([
      {
        key: 'node:w-1:MemoryPressure',
        factor: 'NODE_CONDITION',
        message: 'node w-1 has MemoryPressure: ReasonMemoryPressure: details',
      },
    ]);
  });

  it.each<{ reason: string | null; message: string | null; says: string }>([
    { reason: 'KubeletNotReady', message: 'PLEG is not healthy', says: ': KubeletNotReady: PLEG is not healthy' },
    { reason: 'KubeletNotReady', message: null, says: ': KubeletNotReady' },
    { reason: null, message: 'PLEG is not healthy', says: ': PLEG is not healthy' },
    { reason: '', message: 'PLEG is not healthy', says: ': PLEG is not healthy' },
    { reason: 'KubeletNotReady', message: '', says: ': KubeletNotReady' },
    { reason: null, message: null, says: '' },
    { reason: '', message: '', says: '' },
  ])('should add the reason $reason and message $message of a condition as "$says"', ({ reason, message, says }) => {
    const failing = (type: string, status: ConditionFacts['status']): NodeFacts => ({
      name: 'w-1',
      conditions: [{ type, status, reason, message }],
      diskUsedBytes: null,
      diskTotalBytes: null,
    });
    expect(findingsOf([failing('Ready', 'FALSE')], calm, policy)[0]?.message).toBe(
      `node w-1 is not Ready (FALSE)${says}`,
    );
    expect(findingsOf([failing('DiskPressure', 'TRUE')], calm, policy)[0]?.message).toBe(
      `node w-1 has DiskPressure${says}`,
    );
  });
});
