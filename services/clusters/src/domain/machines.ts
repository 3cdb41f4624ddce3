import type { MachineState } from '@fleetgraph/clouds';
import type { NodeRole } from '@fleetgraph/schema';
import type { NodePool } from './cluster.js';

/** A machine as the planner sees it. */
export interface ObservedMachine {
  id: string;
  name: string;
  pool: string;
  zone: string;
  instanceType: string;
  imageId: string;
  state: MachineState;
  /** Why it is in its state, in the cloud's words, when the cloud says. */
  stateReason?: string;
  launchedAt?: string;
}

/**
 * A machine the orchestrator decided to create, written to the store before the cloud is
 * called: a replica that dies between the two leaves an intent that the next attempt repeats
 * with the same client token, so nothing is made twice and nothing is orphaned.
 */
export interface MachineIntent {
  token: string;
  name: string;
  pool: string;
  role: NodeRole;
  zone: string;
  instanceType: string;
  imageId: string;
  /** Whether its MachineCreated event has been written (by the attempt whose call returned first). */
  announced?: boolean;
  /** The definition's generation it was made for (absent: made before intents recorded it). */
  generation?: number;
  /**
   * Its cloud-init user data, sealed (it may hold the cluster's CA keys): made once with the
   * intent, so that every attempt sends the same (the client token's idempotency compares it).
   */
  userData?: string;
}

export type PoolPlan =
  | { kind: 'done' }
  | { kind: 'wait'; reason: string }
  | {
      kind: 'act';
      create: { zone: string }[];
      delete: ObservedMachine[];
      reason: string;
      /**
       * It removes an outdated machine of a rolling replacement, or adds a control-plane node
       * beside others: planned again with node readiness (`ready`) where it is known.
       */
      gated?: boolean;
    };

const ALIVE: ReadonlySet<MachineState> = new Set(['pending', 'running']);

/** States of a machine that will never serve: removed, and their replacement made afresh. */
export const isBroken = (m: Pick<ObservedMachine, 'state'>) =>
  !ALIVE.has(m.state) && m.state !== 'terminating' && m.state !== 'terminated';

/** Whether a machine or intent is what the pool asks for now. */
const fitsPool = (pool: NodePool, imageId: string) => (m: { instanceType: string; imageId: string; zone: string }) =>
  m.instanceType === pool.instanceType && m.imageId === imageId && pool.availabilityZones.includes(m.zone);

/**
 * The open intents a changed definition still wants (pure). Those made for the current
 * generation are kept: the plan asked for them. Those made for an earlier one are kept only if
 * they still fit their pool (its instance type, image and zones) and the pool still lacks up-to-date
 * machines, the earliest first: otherwise one the cloud refuses for good (an instance type a zone
 * does not offer, a quota) would be sent for ever after the user changed what they asked for.
 * A machine a dropped intent made anyway (its call went through, the cloud did not list it yet)
 * carries its pool's tag, and the plan removes it as outdated or surplus.
 */
export function wantedIntents(
  pools: readonly NodePool[],
  imageId: string,
  machines: readonly ObservedMachine[],
  intents: readonly MachineIntent[],
  generation: number,
  /**
   * The first control-plane node's: always kept (its machine may run unlisted yet; dropped, a
   * second node would run kubeadm init). An outdated first node is kept anyway (planPool's `keep`).
   */
  keep?: string,
): MachineIntent[] {
  const current = intents.filter((i) => (i.generation ?? 0) >= generation || i.name === keep);
  const kept = [...current];
  for (const intent of intents) {
    if (current.includes(intent)) continue;
    const pool = pools.find((p) => p.name === intent.pool);
    if (!pool || !fitsPool(pool, imageId)(intent)) continue;
    const upToDate = machines.filter((m) => m.pool === pool.name && ALIVE.has(m.state) && fitsPool(pool, imageId)(m));
    const open = kept.filter((i) => i.pool === pool.name).length;
    if (upToDate.length + open < pool.count) kept.push(intent);
  }
  return intents.filter((i) => kept.includes(i));
}

/**
 * The next step for one pool (pure). Rolling replacement surges one up-to-date machine, waits
 * until it runs, then removes one outdated machine; plain scale-ups create every missing
 * machine at once (a control plane's one at a time); scale-downs remove extra machines,
 * pending ones and the newest first. Machines are spread over the pool's zones, and rebalanced
 * when a zone is added.
 */
export function planPool(
  pool: NodePool,
  imageId: string,
  machines: readonly ObservedMachine[],
  intents: readonly MachineIntent[],
  /**
   * A machine never removed while it runs: the first control-plane node, whose address is the
   * cluster's API endpoint (no load balancer is made yet). Outdated, it counts as up to date.
   */
  keep?: string,
  /**
   * Whether a machine's node is Ready, when known: a rolling replacement then removes an
   * outdated machine only once every up-to-date one is Ready, not merely running, and a control
   * plane adds a node only once the others are.
   */
  ready?: (name: string) => boolean,
): PoolPlan {
  const mine = machines.filter((m) => m.pool === pool.name);
  const broken = mine.filter(isBroken);
  const alive = mine.filter((m) => ALIVE.has(m.state));
  const fits = (m: ObservedMachine | MachineIntent) => ('id' in m && m.name === keep) || fitsPool(pool, imageId)(m);

  let upToDate = alive.filter(fits);
  let outdated = alive.filter((m) => !fits(m));
  const pendingIntents = intents.filter((i) => i.pool === pool.name && fits(i));

  // Rebalance: one machine from the fullest zone is replaced when zones differ by more than one.
  if (outdated.length === 0 && pendingIntents.length === 0) {
    const byZone = countByZone(pool.availabilityZones, upToDate);
    const counts = [...byZone.values()];
    if (upToDate.length <= pool.count && Math.max(...counts) - Math.min(...counts) > 1) {
      const fullest = [...byZone].sort((a, b) => b[1] - a[1])[0]![0];
      const moved = newestFirst(upToDate.filter((m) => m.zone === fullest && m.name !== keep))[0];
      if (moved) {
        upToDate = upToDate.filter((m) => m !== moved);
        outdated = [moved];
      }
    }
  }

  if (broken.length > 0)
    return { kind: 'act', create: [], delete: broken, reason: `removing ${broken.length} failed machine(s)` };

  const have = upToDate.length + pendingIntents.length;
  const coming = pendingIntents.length > 0 || upToDate.some((m) => m.state === 'pending');
  // An up-to-date machine whose node is not Ready yet, where readiness is known.
  const joining = ready && upToDate.find((m) => !ready(m.name));
  if (outdated.length === 0) {
    // Control-plane nodes join one at a time: each adds an etcd member, and kubeadm's joins
    // must not race each other. The next waits for the last to run, and to be Ready where node
    // readiness is known (`ready`).
    if (have < pool.count && pool.role === 'CONTROL_PLANE' && coming)
      return { kind: 'wait', reason: `waiting for the new ${pool.name} machine to run before adding the next` };
    if (have < pool.count && pool.role === 'CONTROL_PLANE' && joining)
      return { kind: 'wait', reason: `waiting for node ${joining.name} to be Ready before adding the next` };
    if (have < pool.count && pool.role === 'CONTROL_PLANE')
      return {
        kind: 'act',
        create: zonesFor(pool, upToDate, pendingIntents, 1),
        delete: [],
        reason: `scaling ${pool.name} up to ${pool.count}, one node at a time`,
        gated: upToDate.length > 0,
      };
    if (have < pool.count)
      return {
        kind: 'act',
        create: zonesFor(pool, upToDate, pendingIntents, pool.count - have),
        delete: [],
        reason: `scaling ${pool.name} up to ${pool.count}`,
      };
    if (upToDate.length > pool.count) {
      const removable = upToDate.filter((m) => m.name !== keep);
      const extra = pickForRemoval(
        pool.availabilityZones,
        removable,
        Math.min(removable.length, upToDate.length - pool.count),
      );
      return { kind: 'act', create: [], delete: extra, reason: `scaling ${pool.name} down to ${pool.count}` };
    }
    if (pendingIntents.length > 0 || upToDate.some((m) => m.state === 'pending'))
      return { kind: 'wait', reason: `waiting for ${pool.name} machines to run` };
    return { kind: 'done' };
  }

  // Rolling replacement, one machine at a time.
  if (pendingIntents.length > 0 || upToDate.some((m) => m.state === 'pending'))
    return { kind: 'wait', reason: `waiting for the new ${pool.name} machine to run` };
  if (upToDate.length >= pool.count || upToDate.length + outdated.length > pool.count) {
    if (joining)
      return { kind: 'wait', reason: `waiting for node ${joining.name} to be Ready before removing an outdated one` };
    return {
      kind: 'act',
      create: [],
      delete: [oldestFirst(outdated)[0]!],
      reason: `replacing ${pool.name} machines: removing an outdated one`,
      gated: true,
    };
  }
  return {
    kind: 'act',
    create: zonesFor(pool, upToDate, pendingIntents, 1),
    delete: [],
    reason: `replacing ${pool.name} machines: adding an up-to-date one`,
  };
}

function countByZone(zones: readonly string[], machines: readonly { zone: string }[]): Map<string, number> {
  const counts = new Map(zones.map((z) => [z, 0]));
  for (const m of machines) if (counts.has(m.zone)) counts.set(m.zone, counts.get(m.zone)! + 1);
  return counts;
}

/** Zones for `n` new machines: each goes to the zone with the fewest, in the pool's zone order on ties. */
function zonesFor(
  pool: NodePool,
  machines: readonly { zone: string }[],
  intents: readonly { zone: string }[],
  n: number,
): { zone: string }[] {
  const counts = countByZone(pool.availabilityZones, [...machines, ...intents]);
  const out: { zone: string }[] = [];
  for (let i = 0; i < n; i++) {
    const zone = pool.availabilityZones.reduce((best, z) => (counts.get(z)! < counts.get(best)! ? z : best));
    counts.set(zone, counts.get(zone)! + 1);
    out.push({ zone });
  }
  return out;
}

/** Machines to remove on a scale-down: pending ones first, then the newest of the fullest zone, one at a time. */
function pickForRemoval(zones: readonly string[], machines: readonly ObservedMachine[], n: number): ObservedMachine[] {
  const left = [...machines];
  const picked: ObservedMachine[] = [];
  while (picked.length < n) {
    const pending = left.find((m) => m.state === 'pending');
    let victim = pending;
    if (!victim) {
      const counts = countByZone(zones, left);
      const fullest = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
      victim = newestFirst(left.filter((m) => m.zone === fullest))[0] ?? newestFirst(left)[0]!;
    }
    picked.push(victim);
    left.splice(left.indexOf(victim), 1);
  }
  return picked;
}

const launched = (m: ObservedMachine) => m.launchedAt ?? '';
const newestFirst = (ms: readonly ObservedMachine[]) =>
  [...ms].sort((a, b) => launched(b).localeCompare(launched(a)) || b.name.localeCompare(a.name));
const oldestFirst = (ms: readonly ObservedMachine[]) =>
  [...ms].sort((a, b) => launched(a).localeCompare(launched(b)) || a.name.localeCompare(b.name));
