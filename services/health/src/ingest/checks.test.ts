import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  agentReport,
  agentReportSchema,
  clusterUsageSchema,
  conditionStatuses,
  fleetHealthSchema,
  healthStatuses,
  nodeRoles,
  observationSources,
  serviceTypes,
  type AgentReport,
  type ClusterUsageMessage,
  type FleetHealthMessage,
} from '@fleetgraph/schema';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEFAULT_POLICY, evaluate, INITIAL_STATE } from '../domain/health.js';
import { UsageScope, usageOf, type NodeView } from '../domain/usage.js';
import {
  agentReportCheck,
  fleetMessageCheck,
  isPlainAgentReport,
  isPlainFleetMessage,
  isPlainUsageMessage,
  isReportSubjectOf,
  usageMessageCheck,
} from './checks.js';
import { fleetHealthMessage, type ClusterRecord } from './records.js';
import { usageSamplesOf } from './samples.js';

/**
 * The hand-written checks against the contracts' zod schemas: on every value generated (valid
 * ones, valid ones with one field broken or one key added, and arbitrary JSON), a predicate
 * accepts exactly what the schema accepts and gives back unchanged, and the checks give the
 * same results as the schemas, issues included. Values go through JSON first: the bus hands
 * over what `JSON.parse` makes.
 */

const RUNS = Number(process.env.CHECKS_RUNS ?? 1_000);
const json = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** Whether zod takes `value` and gives it back equal, which is when a predicate may accept it. */
function zodKeeps(schema: z.ZodType, value: unknown): boolean {
  const parsed = schema.safeParse(value);
  return parsed.success && isDeepStrictEqual(parsed.data, value);
}

/** The check and the schema say the same of `value`: the same success, the same value or the same issues. */
function expectSameResult(check: z.ZodType, schema: z.ZodType, value: unknown): void {
  const ours = check.safeParse(value);
  const theirs = schema.safeParse(value);
  expect(ours.success).toBe(theirs.success);
  if (ours.success && theirs.success) expect(isDeepStrictEqual(ours.data, theirs.data)).toBe(true);
  else expect(ours.error?.issues).toEqual(theirs.error?.issues);
}

/** Every path to a value in a JSON tree (the root excluded). */
function pathsOf(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...at, i], ...pathsOf(v, [...at, i])]);
  if (typeof value === 'object' && value !== null)
    return Object.entries(value).flatMap(([k, v]) => [[...at, k], ...pathsOf(v, [...at, k])]);
  return [];
}

type Mutation = { kind: 'set'; value: unknown } | { kind: 'delete' } | { kind: 'add'; key: string; value: unknown };

/** `value` with one change at `path`: a field set to another value, removed, or a key added to an object. */
function mutated(value: unknown, path: (string | number)[], mutation: Mutation): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let parent: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (mutation.kind === 'set') parent[last] = mutation.value;
  else if (mutation.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else {
    const target = parent[last];
    if (typeof target === 'object' && target !== null && !Array.isArray(target))
      (target as Record<string, unknown>)[mutation.key] = mutation.value;
    else parent[last] = { [mutation.key]: mutation.value };
  }
  return json(copy);
}

/** Values at the edges of the contracts' rules, to put in place of a field. */
const tricky = fc.oneof(
  fc.constantFrom(
    null,
    '',
    ' ',
    'x',
    'x'.repeat(63),
    'x'.repeat(64),
    'x'.repeat(128),
    'x'.repeat(129),
    'x'.repeat(253),
    'x'.repeat(254),
    'x'.repeat(256),
    'x'.repeat(257),
    'x'.repeat(1024),
    'x'.repeat(1025),
    'x'.repeat(2048),
    'x'.repeat(2049),
    `http://example.com/${'p'.repeat(2029)}`,
    `http://example.com/${'p'.repeat(2030)}`,
    'http://10.0.0.1:9090/',
    ' http://10.0.0.1:9090/',
    'http://10.0.0.1:9090/ ',
    '\thttp://10.0.0.1:9090/\n',
    'not a url',
    'mailto:ops@example.com',
    'TRUE',
    'true',
    'FALSE',
    'UNKNOWN',
    'WORKER',
    'worker',
    'CONTROL_PLANE',
    'LOAD_BALANCER',
    'NODE_PORT',
    'simulated',
    'kubernetes',
    '2025-03-04T12:00:00.000Z',
    '2025-03-04T12:00:00Z',
    '2025-03-04T12:00Z',
    '2025-03-04T12:00:00.123456789Z',
    '2025-03-04T12:00:00.000+01:00',
    '2025-03-04T12:00:00.000',
    '2025-03-04 12:00:00.000Z',
    '2024-02-29T00:00:00.000Z',
    '2025-02-29T00:00:00.000Z',
    '2025-13-01T00:00:00.000Z',
    '2025-03-04T24:00:00.000Z',
    '2025-03-04',
    0,
    -0,
    1,
    -1,
    0.5,
    1.5,
    99,
    100,
    3_600_000,
    3_600_001,
    2 ** 53 - 1,
    2 ** 53,
    1e308,
    -1e-300,
    true,
    false,
    [],
    {},
    [1],
    ['x'],
    { name: 'w-1' },
  ),
  fc.array(fc.constant('problem'), { minLength: 32, maxLength: 33 }),
  fc.array(fc.constant('http://10.0.0.1/'), { minLength: 64, maxLength: 65 }),
  fc.jsonValue({ maxDepth: 2 }),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: tricky.map((value) => ({ kind: 'set' as const, value })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'delete' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      key: fc.constantFrom('extra', 'usage', 'name', '__proto__', 'constructor', 'toString'),
      value: tricky,
    }),
  },
);

/** A value with one change at one of its paths (or, without paths, itself). */
const oneChangeTo = <T>(valid: fc.Arbitrary<T>) =>
  fc.tuple(valid, fc.nat(), mutation).map(([value, pick, change]) => {
    const paths = pathsOf(value);
    return paths.length === 0 ? value : mutated(value, paths[pick % paths.length]!, change);
  });

// Valid reports: every field within its rules, strings of any characters.
const text = (minLength: number, maxLength: number) =>
  fc.oneof(
    fc.string({ minLength, maxLength }),
    fc.string({ minLength, maxLength, unit: 'binary' }),
    fc.constant('x'.repeat(maxLength)),
  );
const nullableText = (maxLength: number) => fc.option(text(0, maxLength), { nil: null });
const amount = fc.oneof(
  fc.nat(),
  fc.double({ min: 0, max: 1e15, noNaN: true }),
  fc.constantFrom(0, 2 ** 53, Number.MAX_VALUE),
);
const resources = fc.record({ cpuCores: amount, memoryBytes: amount, diskBytes: fc.option(amount, { nil: null }) });
const datetime = fc.oneof(
  fc
    .date({ min: new Date('0000-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom('2025-03-04T12:00:00Z', '2025-03-04T12:00Z', '2025-03-04T12:00:00.1234567Z'),
);
const condition = fc.record({
  type: text(1, 128),
  status: fc.constantFrom(...conditionStatuses),
  reason: nullableText(256),
  message: nullableText(2048),
});
const node = fc.record({
  name: text(1, 253),
  role: fc.constantFrom(...nodeRoles),
  pool: text(1, 128),
  zone: nullableText(128),
  instanceType: nullableText(128),
  conditions: fc.array(condition, { maxLength: 6 }),
  capacity: resources,
  allocatable: resources,
  usage: fc.option(resources, { nil: null }),
  requests: resources,
  pods: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
});
const service = fc.record({
  namespace: text(1, 63),
  name: text(1, 63),
  type: fc.constantFrom(...serviceTypes),
  urls: fc.array(fc.oneof(fc.webUrl(), fc.constantFrom('http://10.0.0.10:9090/', 'https://[::1]:8443/x?y=1#z')), {
    maxLength: 3,
  }),
});
const nodeUsage = fc.record({
  name: text(1, 253),
  cpuCores: fc.option(amount, { nil: null }),
  memoryBytes: fc.option(amount, { nil: null }),
  diskBytes: fc.option(amount, { nil: null }),
  cpuRequests: amount,
  memoryRequests: amount,
  pods: fc.nat(),
});
const report: fc.Arbitrary<AgentReport> = fc
  .record(
    {
      schemaVersion: fc.constant(1 as const),
      clusterId: text(1, 128),
      tenantId: text(1, 128),
      source: fc.constantFrom(...observationSources),
      seq: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
      agentStartedAt: datetime,
      sentAt: datetime,
      intervalMs: fc.integer({ min: 100, max: 3_600_000 }),
      nodes: fc.option(fc.array(node, { maxLength: 4 }), { nil: null }),
      services: fc.option(fc.array(service, { maxLength: 3 }), { nil: null }),
      usage: fc.option(fc.array(nodeUsage, { maxLength: 4 }), { nil: null }),
      problems: fc.array(text(0, 1024), { maxLength: 3 }),
    },
    {
      requiredKeys: [
        'schemaVersion',
        'clusterId',
        'tenantId',
        'source',
        'seq',
        'agentStartedAt',
        'sentAt',
        'intervalMs',
        'nodes',
        'services',
        'problems',
      ],
    },
  )
  .map(json);

/** The contract's JSON Schema, hashed: a change of the contract changes it. */
const fingerprint = (schema: z.ZodType) =>
  createHash('sha256')
    .update(JSON.stringify(z.toJSONSchema(schema, { unrepresentable: 'any' })))
    .digest('hex')
    .slice(0, 16);

describe('hand-written checks of the contracts', () => {
  it('should be checking the contracts as they were written against (else update checks.ts, then these)', () => {
    expect({
      agentReport: fingerprint(agentReportSchema),
      clusterUsage: fingerprint(clusterUsageSchema),
      fleetHealth: fingerprint(fleetHealthSchema),
    }).toEqual({ agentReport: '9655e414e6886293', clusterUsage: 'a958e084ab1b9422', fleetHealth: '0da7545427de81a8' });
  });

  describe('agent reports', () => {
    const property = (value: unknown) => {
      expect(isPlainAgentReport(value)).toBe(zodKeeps(agentReportSchema, value));
      expectSameResult(agentReportCheck, agentReportSchema, value);
    };

    it('should accept every valid report, as it is', () => {
      fc.assert(
        fc.property(report, (value) => {
          expect(isPlainAgentReport(value)).toBe(true);
          expect(agentReportCheck.safeParse(value).data).toBe(value);
          property(value);
        }),
        { numRuns: RUNS },
      );
    });

    it('should accept and refuse what the schema does, with its issues, for a report with one change', () => {
      fc.assert(fc.property(oneChangeTo(report), property), { numRuns: RUNS * 5 });
    });

    it('should accept and refuse what the schema does for any JSON', () => {
      fc.assert(fc.property(fc.jsonValue(), property), { numRuns: RUNS });
    });

    it.each([
      { name: 'the most nodes', nodes: 2_000, services: 0, usage: 2_000 },
      { name: 'one node too many', nodes: 2_001, services: 0, usage: 0 },
      { name: 'one node usage too many', nodes: 0, services: 0, usage: 2_001 },
      { name: 'the most services', nodes: 0, services: 1_000, usage: 0 },
      { name: 'one service too many', nodes: 0, services: 1_001, usage: 0 },
    ])('should judge $name as the schema does', ({ nodes, services, usage }) => {
      const sample = fc.sample(report, { numRuns: 1, seed: 7 })[0]!;
      const someNode = fc.sample(node, { numRuns: 1, seed: 7 })[0]!;
      const someService = fc.sample(service, { numRuns: 1, seed: 7 })[0]!;
      const someUsage = fc.sample(nodeUsage, { numRuns: 1, seed: 7 })[0]!;
      const value = json({
        ...sample,
        nodes: Array(nodes).fill(someNode),
        services: Array(services).fill(someService),
        usage: Array(usage).fill(someUsage),
      });
      property(value);
    });

    it('should refuse a report with the issue the schema gives', () => {
      const value = { ...fc.sample(report, { numRuns: 1, seed: 1 })[0]!, intervalMs: 50 };
      const parsed = agentReportCheck.safeParse(value);
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]?.path).toEqual(['intervalMs']);
      expect(parsed.error?.issues).toEqual(agentReportSchema.safeParse(value).error?.issues);
    });

    it('should strip what the contract does not know, as the schema does', () => {
      const value = { ...fc.sample(report, { numRuns: 1, seed: 2 })[0]!, extra: true };
      expect(isPlainAgentReport(value)).toBe(false);
      expect(agentReportCheck.safeParse(value).data).toEqual(agentReportSchema.parse(value));
      expect(agentReportCheck.safeParse(value).data).not.toHaveProperty('extra');
    });

    it('should otherwise be the schema', () => {
      const value = fc.sample(report, { numRuns: 1, seed: 3 })[0]!;
      expect(agentReportCheck.parse(value)).toEqual(agentReportSchema.parse(value));
      expect(agentReportCheck.shape).toBe(agentReportSchema.shape);
    });
  });

  describe('usage samples and fleet health, as the ingest builds them', () => {
    const nodeView = fc.record<NodeView>({
      name: text(1, 20),
      role: fc.constantFrom(...nodeRoles),
      pool: text(1, 20),
      zone: nullableText(20),
      instanceType: nullableText(20),
      conditions: fc.constant([]),
      cpuCapacity: amount,
      memoryCapacity: amount,
      diskTotalBytes: fc.option(amount, { nil: null }),
      cpuAllocatable: amount,
      memoryAllocatable: amount,
      cpuUsed: fc.option(amount, { nil: null }),
      memoryUsed: fc.option(amount, { nil: null }),
      diskUsedBytes: fc.option(amount, { nil: null }),
      cpuRequests: amount,
      memoryRequests: amount,
      pods: fc.nat(),
    });
    const record = fc
      .record({
        id: text(1, 128),
        tenantId: text(1, 128),
        projectId: text(1, 128),
        nodes: fc.array(nodeView, { maxLength: 5 }),
        status: fc.constantFrom(...healthStatuses),
        stale: fc.boolean(),
        changedAt: fc.integer({ min: 0, max: 4e12 }),
        nodesObservedAt: fc.option(fc.integer({ min: 0, max: 4e12 }), { nil: null }),
      })
      .map(
        ({ nodes, status, stale, ...rest }) =>
          ({
            ...rest,
            nodes,
            state: INITIAL_STATE,
            health: { ...evaluate(INITIAL_STATE, 0, DEFAULT_POLICY), status, stale },
            workers: usageOf(nodes, UsageScope.WORKERS),
            all: usageOf(nodes, UsageScope.ALL),
          }) as unknown as ClusterRecord,
      );
    const now = fc.integer({ min: 0, max: 4e12 });

    it('should take them as they are, and send the same bytes as the schemas', () => {
      fc.assert(
        fc.property(record, now, (r, at) => {
          for (const message of usageSamplesOf(r, at)) {
            // Sums of large amounts may overflow to Infinity: then the schema refuses, and so do the checks.
            expect(isPlainUsageMessage(message)).toBe(zodKeeps(clusterUsageSchema, message));
            expectSameResult(usageMessageCheck, clusterUsageSchema, message);
            const parsed = clusterUsageSchema.safeParse(message);
            if (parsed.success) {
              expect(usageMessageCheck.safeParse(message).data).toBe(message);
              expect(JSON.stringify(message)).toBe(JSON.stringify(parsed.data));
            }
          }
          const fleet = fleetHealthMessage(r);
          expect(isPlainFleetMessage(fleet)).toBe(zodKeeps(fleetHealthSchema, fleet));
          expectSameResult(fleetMessageCheck, fleetHealthSchema, fleet);
          const parsed = fleetHealthSchema.safeParse(fleet);
          if (parsed.success) expect(JSON.stringify(fleet)).toBe(JSON.stringify(parsed.data));
        }),
        { numRuns: RUNS },
      );
    });

    it('should accept and refuse what the schemas do, with their issues, for a message with one change', () => {
      const usage = fc.tuple(record, now).map(([r, at]) => json(usageSamplesOf(r, at)[0]!) as ClusterUsageMessage);
      const fleet = record.map((r) => json(fleetHealthMessage(r)) as FleetHealthMessage);
      fc.assert(
        fc.property(oneChangeTo(usage), (value) => {
          expect(isPlainUsageMessage(value)).toBe(zodKeeps(clusterUsageSchema, value));
          expectSameResult(usageMessageCheck, clusterUsageSchema, value);
        }),
        { numRuns: RUNS * 2 },
      );
      fc.assert(
        fc.property(oneChangeTo(fleet), (value) => {
          expect(isPlainFleetMessage(value)).toBe(zodKeeps(fleetHealthSchema, value));
          expectSameResult(fleetMessageCheck, fleetHealthSchema, value);
        }),
        { numRuns: RUNS * 2 },
      );
    });
  });

  it('should tell a report subject of a cluster as agentReport.parse does', () => {
    const token = fc.oneof(
      fc.constantFrom('agent', 'v1', 'report', 'c1', '', '*', '>', 'c.1', '.c1', 'c1.', 'agent.v1'),
      fc.string({ maxLength: 8 }),
    );
    const subject = fc.oneof(
      fc.array(token, { minLength: 1, maxLength: 6 }).map((tokens) => tokens.join('.')),
      token.map((clusterId) => `agent.v1.${clusterId}.report`),
    );
    fc.assert(
      fc.property(subject, token, fc.boolean(), (given, clusterId, own) => {
        const id = own ? (agentReport.parse(given)?.clusterId ?? clusterId) : clusterId;
        expect(isReportSubjectOf(given, id)).toBe(agentReport.parse(given)?.clusterId === id);
      }),
      { numRuns: RUNS * 5 },
    );
  });
});
