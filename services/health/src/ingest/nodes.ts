import type { ReportedNode, ReportedService, ReportedUsage } from '@fleetgraph/schema';
import type { ConditionFacts } from '../domain/health.js';
import type { NodeView } from '../domain/usage.js';

/**
 * Shares the objects and strings that most reports repeat (a condition "MemoryPressure False
 * KubeletHasSufficientMemory ...", a pool or zone name) between all the nodes that hold them.
 * Bounded: past `limit` entries, values are kept as they come.
 */
export class Interner {
  readonly #conditions = new Map<string, ConditionFacts>();
  readonly #ids = new Map<ConditionFacts, number>();
  readonly #lists = new Map<string, ConditionFacts[]>();
  readonly #strings = new Map<string, string>();

  constructor(readonly limit = 50_000) {}

  /** A node's conditions as one list shared by every node with the same ones (most healthy nodes). */
  conditions(reported: readonly ConditionFacts[]): ConditionFacts[] {
    const conditions = reported.map((c) => this.condition(c));
    let key = '';
    for (const c of conditions) {
      const id = this.#ids.get(c);
      if (id === undefined) return conditions;
      key += `${id},`;
    }
    const known = this.#lists.get(key);
    if (known) return known;
    // Shared between nodes: frozen, so that nothing can change one node's through another's.
    Object.freeze(conditions);
    if (this.#lists.size < this.limit) this.#lists.set(key, conditions);
    return conditions;
  }

  condition(c: ConditionFacts): ConditionFacts {
    const key = `${c.type}\u0000${c.status}\u0000${c.reason ?? ''}\u0000${c.message ?? ''}`;
    const known = this.#conditions.get(key);
    if (known) return known;
    const value = Object.freeze({ type: c.type, status: c.status, reason: c.reason, message: c.message });
    if (this.#conditions.size < this.limit) {
      this.#conditions.set(key, value);
      this.#ids.set(value, this.#ids.size);
    }
    return value;
  }

  string<S extends string | null>(value: S): S {
    if (value === null) return value;
    const known = this.#strings.get(value);
    if (known !== undefined) return known as S;
    if (this.#strings.size < this.limit) this.#strings.set(value, value);
    return value;
  }
}

/**
 * The nodes of a report in compact form, reusing `previous` when the report has the same nodes
 * (names, in order) as the last one: its NodeView objects are updated in place. Objects that a
 * cluster keeps from one report to the next would otherwise all become garbage every interval
 * in the old generation, which is where a large fleet's garbage collection time goes.
 */
export function updateNodeViews(
  previous: NodeView[],
  reported: readonly ReportedNode[],
  interner: Interner,
): NodeView[] {
  const same = previous.length === reported.length && previous.every((view, i) => view.name === reported[i]!.name);
  if (!same) return reported.map((n) => toNodeView(n, interner));
  for (let i = 0; i < reported.length; i++) {
    const view = previous[i]!;
    const node = reported[i]!;
    view.role = node.role;
    view.pool = interner.string(node.pool);
    view.zone = interner.string(node.zone);
    view.instanceType = interner.string(node.instanceType);
    // Conditions rarely change: compare with the node's own before looking anything up.
    const same =
      node.conditions.length === view.conditions.length &&
      node.conditions.every((c, k) => {
        const o = view.conditions[k]!;
        return c.type === o.type && c.status === o.status && c.reason === o.reason && c.message === o.message;
      });
    if (!same) view.conditions = interner.conditions(node.conditions);
    view.cpuCapacity = node.capacity.cpuCores;
    view.memoryCapacity = node.capacity.memoryBytes;
    view.diskTotalBytes = node.capacity.diskBytes;
    view.cpuAllocatable = node.allocatable.cpuCores;
    view.memoryAllocatable = node.allocatable.memoryBytes;
    view.cpuUsed = node.usage?.cpuCores ?? null;
    view.memoryUsed = node.usage?.memoryBytes ?? null;
    view.diskUsedBytes = node.usage?.diskBytes ?? null;
    view.cpuRequests = node.requests.cpuCores;
    view.memoryRequests = node.requests.memoryBytes;
    view.pods = node.pods;
  }
  return previous;
}

/**
 * Applies a compact report's numbers to the nodes of the last full one, in place. Returns false
 * (and changes nothing) when they are not the same nodes in the same order: the report is then
 * a heartbeat only, until the next full report.
 */
export function applyUsage(views: NodeView[], usage: readonly ReportedUsage[]): boolean {
  if (views.length !== usage.length || views.some((view, i) => view.name !== usage[i]!.name)) return false;
  for (let i = 0; i < usage.length; i++) {
    const view = views[i]!;
    const u = usage[i]!;
    view.cpuUsed = u.cpuCores;
    view.memoryUsed = u.memoryBytes;
    view.diskUsedBytes = u.diskBytes;
    view.cpuRequests = u.cpuRequests;
    view.memoryRequests = u.memoryRequests;
    view.pods = u.pods;
  }
  return true;
}

/** The services of a report, or `previous` when they are the same (see `updateNodeViews`). */
export function sameOrNew(previous: ReportedService[], reported: ReportedService[]): ReportedService[] {
  const same =
    previous.length === reported.length &&
    previous.every((s, i) => {
      const r = reported[i]!;
      return (
        s.namespace === r.namespace &&
        s.name === r.name &&
        s.type === r.type &&
        s.urls.length === r.urls.length &&
        s.urls.every((u, k) => u === r.urls[k])
      );
    });
  return same ? previous : reported;
}

/** A reported node in the compact form the service keeps. */
export function toNodeView(node: ReportedNode | NodeView, interner: Interner): NodeView {
  if ('cpuCapacity' in node) {
    // Already compact (read back from the store): share its conditions and strings again.
    return {
      ...node,
      pool: interner.string(node.pool),
      zone: interner.string(node.zone),
      instanceType: interner.string(node.instanceType),
      conditions: interner.conditions(node.conditions),
    };
  }
  return {
    name: node.name,
    role: node.role,
    pool: interner.string(node.pool),
    zone: interner.string(node.zone),
    instanceType: interner.string(node.instanceType),
    conditions: interner.conditions(node.conditions),
    cpuCapacity: node.capacity.cpuCores,
    memoryCapacity: node.capacity.memoryBytes,
    diskTotalBytes: node.capacity.diskBytes,
    cpuAllocatable: node.allocatable.cpuCores,
    memoryAllocatable: node.allocatable.memoryBytes,
    cpuUsed: node.usage?.cpuCores ?? null,
    memoryUsed: node.usage?.memoryBytes ?? null,
    diskUsedBytes: node.usage?.diskBytes ?? null,
    cpuRequests: node.requests.cpuCores,
    memoryRequests: node.requests.memoryBytes,
    pods: node.pods,
  };
}

/** FNV-1a over a string, continuing from `h`. */
function mix(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h;
}

/**
 * A hash of what changes the stored picture of a cluster beyond its usage numbers: which nodes
 * there are, their roles and conditions, and the services. A report that changes it is written
 * soon; one that only moves the numbers waits for the periodic write. (A hash, not the text: a
 * hundred thousand clusters' worth of text would cost more memory than their nodes.)
 */
export function shapeOf(nodes: readonly NodeView[], services: readonly ReportedService[]): number {
  let h = 2166136261;
  for (const node of nodes) {
    h = mix(h, node.name);
    h = mix(h, node.role);
    h = mix(h, node.pool);
    h = mix(h, node.cpuUsed === null ? '-' : '+');
    for (const c of node.conditions) h = mix(mix(h, c.type), c.status);
  }
  for (const s of services) {
    h = mix(mix(mix(h, s.namespace), s.name), s.type);
    for (const url of s.urls) h = mix(h, url);
  }
  return h >>> 0;
}
