import {
  agentReport,
  agentReportSchema,
  clusterUsageSchema,
  conditionStatuses,
  fleetHealthSchema,
  healthStatuses,
  MAX_REPORTED_NODES,
  nodeRoles,
  observationSources,
  serviceTypes,
  usageScopes,
  type AgentReport,
  type ClusterUsageMessage,
  type FleetHealthMessage,
} from '@fleetgraph/schema';
import type { z } from 'zod';

/**
 * The contracts on the hot path of the ingest, checked by hand: the agent report (3,333 a second
 * for 100,000 clusters at 30 s), and the two usage samples and the fleet health published at
 * each report. zod copies every object and array it checks (a full report is a tree of about 120
 * of them) and that costs more than parsing the JSON: about 17 µs a report against 13 µs.
 *
 * Each check is the contract's own zod schema whose `safeParse` (what the kit's bus calls) asks a
 * hand-written predicate first: a value the predicate accepts is passed on as it is, without a
 * copy; anything else (an invalid value, or one with keys the contract does not know, which zod
 * would strip, or a URL zod would trim) goes to the schema, which gives the same value or the
 * same issues as ever. So the checks could only differ from the contract by a predicate
 * accepting a value that the schema refuses or changes: `checks.test.ts` generates values of
 * every shape (valid ones, valid ones with one field changed or one key added, arbitrary JSON)
 * and shows that a predicate accepts exactly what its schema accepts and gives back unchanged.
 * The predicates are written for values as `JSON.parse` makes them (plain objects and arrays),
 * which is what the bus hands over and what the ingest builds.
 *
 * When a contract changes, `checks.test.ts` says so (it pins each schema's JSON Schema): change
 * the predicate with it.
 */

type Fields = Record<string, unknown>;
type Predicate = (value: unknown) => boolean;

/**
 * `schema`, whose `safeParse` (what the kit's bus calls) takes what `accepts` accepts as it is,
 * without a copy, and leaves the rest to `schema`'s own; every other method is `schema`'s. (A
 * zod `transform` in front of the schema would do as much, but measured twice the CPU: its few
 * extra objects, alive while the report is, had V8 allocate reports straight in the old
 * generation, by allocation-site pretenuring.)
 */
export function prechecked<S extends z.ZodType>(schema: S, accepts: (value: unknown) => boolean): S {
  const safeParse = (value: unknown, params?: Parameters<S['safeParse']>[1]) =>
    accepts(value) ? { success: true, data: value } : schema.safeParse(value, params);
  return Object.assign(Object.create(schema) as S, { safeParse: safeParse as S['safeParse'] });
}

const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Own and inherited enumerable keys: an object with more than the contract's (zod would strip them) takes the long way. */
function keyCount(o: Fields): number {
  let n = 0;
  for (const _ in o) n++;
  return n;
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** `z.number().finite().nonnegative()`. */
const isAmount = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isAmountOrNull = (v: unknown) => v === null || isAmount(v);
/** `z.number().int().nonnegative()` (zod 4's int is a safe integer). */
const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const isText = (v: unknown, min: number, max: number) => typeof v === 'string' && v.length >= min && v.length <= max;
const isTextOrNull = (v: unknown, max: number) => v === null || (typeof v === 'string' && v.length <= max);
const oneOf = (values: readonly string[]) => {
  const set = new Set<unknown>(values);
  return (v: unknown) => set.has(v);
};
const isArrayOf = (v: unknown, max: number, item: Predicate): v is unknown[] => {
  if (!Array.isArray(v) || v.length > max) return false;
  for (let i = 0; i < v.length; i++) if (!item(v[i])) return false;
  return true;
};

/** The regular expression of a `z.string().datetime()` of the contract, as zod built it. */
function datetimePattern(schema: z.ZodType): RegExp {
  const patterns = (schema as unknown as { _zod: { bag: { patterns?: Set<RegExp> } } })._zod.bag.patterns;
  const pattern = patterns && [...patterns][0];
  if (!pattern) throw new Error('the contract has no datetime pattern where one is expected');
  return pattern;
}
const DATETIME = datetimePattern(agentReportSchema.shape.sentAt);
const STARTED = datetimePattern(agentReportSchema.shape.agentStartedAt);

const isRole = oneOf(nodeRoles);
const isConditionStatus = oneOf(conditionStatuses);
const isServiceType = oneOf(serviceTypes);
const isSource = oneOf(observationSources);

const isCondition = (v: unknown) =>
  isObject(v) &&
  isText(v.type, 1, 128) &&
  isConditionStatus(v.status) &&
  isTextOrNull(v.reason, 256) &&
  isTextOrNull(v.message, 2048) &&
  keyCount(v) === 4;

const isResources = (v: unknown) =>
  isObject(v) && isAmount(v.cpuCores) && isAmount(v.memoryBytes) && isAmountOrNull(v.diskBytes) && keyCount(v) === 3;

const isNode = (v: unknown) =>
  isObject(v) &&
  isText(v.name, 1, 253) &&
  isRole(v.role) &&
  isText(v.pool, 1, 128) &&
  isTextOrNull(v.zone, 128) &&
  isTextOrNull(v.instanceType, 128) &&
  isArrayOf(v.conditions, 64, isCondition) &&
  isResources(v.capacity) &&
  isResources(v.allocatable) &&
  (v.usage === null || isResources(v.usage)) &&
  isResources(v.requests) &&
  isCount(v.pods) &&
  keyCount(v) === 11;

/**
 * `z.string().url().max(2048)`: zod takes what `new URL` takes once trimmed, and gives it back
 * trimmed; one that trimming would change takes the long way.
 */
const isUrl = (v: unknown) => typeof v === 'string' && v.length <= 2048 && v.trim() === v && URL.canParse(v);

const isService = (v: unknown) =>
  isObject(v) &&
  isText(v.namespace, 1, 63) &&
  isText(v.name, 1, 63) &&
  isServiceType(v.type) &&
  isArrayOf(v.urls, 64, isUrl) &&
  keyCount(v) === 4;

const isNodeUsage = (v: unknown) =>
  isObject(v) &&
  isText(v.name, 1, 253) &&
  isAmountOrNull(v.cpuCores) &&
  isAmountOrNull(v.memoryBytes) &&
  isAmountOrNull(v.diskBytes) &&
  isAmount(v.cpuRequests) &&
  isAmount(v.memoryRequests) &&
  isCount(v.pods) &&
  keyCount(v) === 7;

const isProblem = (v: unknown) => typeof v === 'string' && v.length <= 1024;

/** What `agentReportSchema` accepts and gives back unchanged (see above). */
export function isPlainAgentReport(v: unknown): v is AgentReport {
  if (!isObject(v)) return false;
  const { usage } = v;
  return (
    v.schemaVersion === 1 &&
    isText(v.clusterId, 1, 128) &&
    isText(v.tenantId, 1, 128) &&
    isSource(v.source) &&
    isCount(v.seq) &&
    typeof v.agentStartedAt === 'string' &&
    STARTED.test(v.agentStartedAt) &&
    typeof v.sentAt === 'string' &&
    DATETIME.test(v.sentAt) &&
    Number.isSafeInteger(v.intervalMs) &&
    (v.intervalMs as number) >= 100 &&
    (v.intervalMs as number) <= 3_600_000 &&
    (v.nodes === null || isArrayOf(v.nodes, MAX_REPORTED_NODES, isNode)) &&
    (v.services === null || isArrayOf(v.services, 1_000, isService)) &&
    (usage === undefined || usage === null || isArrayOf(usage, MAX_REPORTED_NODES, isNodeUsage)) &&
    isArrayOf(v.problems, 32, isProblem) &&
    // An optional key: zod drops `usage: undefined`, so only a present value counts.
    keyCount(v) === (usage === undefined ? 11 : 12)
  );
}

/** `agentReportSchema`, checked by hand (`isPlainAgentReport`), zod's for anything else. */
export const agentReportCheck = prechecked(agentReportSchema, isPlainAgentReport);

const isStatus = oneOf(healthStatuses);
const isScope = oneOf(usageScopes);
const isNumberOrNull = (v: unknown) => v === null || isNumber(v);
const isSample = (v: unknown) =>
  isObject(v) && typeof v.time === 'string' && isNumber(v.cpuCores) && isNumber(v.memoryBytes) && keyCount(v) === 3;

/** What `clusterUsageSchema` accepts and gives back unchanged. */
export function isPlainUsageMessage(v: unknown): v is ClusterUsageMessage {
  return (
    isObject(v) &&
    typeof v.tenantId === 'string' &&
    typeof v.clusterId === 'string' &&
    isScope(v.scope) &&
    typeof v.time === 'string' &&
    isNumber(v.coresTotal) &&
    isNumber(v.coresUsed) &&
    isNumber(v.cpuUsage) &&
    isNumber(v.memoryTotalBytes) &&
    isNumber(v.memoryUsedBytes) &&
    isNumber(v.memoryUsage) &&
    isNumber(v.cpuRequestsCores) &&
    isNumber(v.memoryRequestsBytes) &&
    isNumberOrNull(v.diskTotalBytes) &&
    isNumberOrNull(v.diskUsedBytes) &&
    isNumberOrNull(v.diskUsage) &&
    Number.isSafeInteger(v.nodes) &&
    (v.observedAt === null || typeof v.observedAt === 'string') &&
    typeof v.stale === 'boolean' &&
    isArrayOf(v.series, Number.POSITIVE_INFINITY, isSample) &&
    keyCount(v) === 19
  );
}

/** `clusterUsageSchema`, checked by hand (`isPlainUsageMessage`), zod's for anything else. */
export const usageMessageCheck = prechecked(clusterUsageSchema, isPlainUsageMessage);

/** What `fleetHealthSchema` accepts and gives back unchanged. */
export function isPlainFleetMessage(v: unknown): v is FleetHealthMessage {
  return (
    isObject(v) &&
    typeof v.tenantId === 'string' &&
    typeof v.projectId === 'string' &&
    typeof v.clusterId === 'string' &&
    isStatus(v.status) &&
    typeof v.stale === 'boolean' &&
    isNumberOrNull(v.cpuUsage) &&
    isNumberOrNull(v.memoryUsage) &&
    Number.isSafeInteger(v.nodes) &&
    (v.observedAt === null || typeof v.observedAt === 'string') &&
    typeof v.changedAt === 'string' &&
    keyCount(v) === 10
  );
}

/** `fleetHealthSchema`, checked by hand (`isPlainFleetMessage`), zod's for anything else. */
export const fleetMessageCheck = prechecked(fleetHealthSchema, isPlainFleetMessage);

const subjectParts = agentReport.template.split('{clusterId}');
if (subjectParts.length !== 2 || subjectParts.some((part) => part.includes('{')))
  throw new Error(`isReportSubjectOf expects one token, {clusterId}, in ${agentReport.template}`);
const [SUBJECT_HEAD, SUBJECT_TAIL] = subjectParts as [string, string];

/**
 * Whether `subject` is the report subject of `clusterId` (`agent.v1.<clusterId>.report`): what
 * `agentReport.parse(subject)?.clusterId === clusterId` says, without its array of tokens and
 * regular expressions. A subject token holds no dot.
 */
export function isReportSubjectOf(subject: string, clusterId: string): boolean {
  return (
    subject.length === SUBJECT_HEAD.length + clusterId.length + SUBJECT_TAIL.length &&
    subject.startsWith(SUBJECT_HEAD) &&
    subject.startsWith(clusterId, SUBJECT_HEAD.length) &&
    subject.endsWith(SUBJECT_TAIL) &&
    !clusterId.includes('.')
  );
}
