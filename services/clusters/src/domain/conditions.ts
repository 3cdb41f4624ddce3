import type { ConditionMessage } from '@fleetgraph/schema';

/** The provisioning milestones, in order. */
export const Milestone = {
  IMAGE: 'Customizing Image',
  INFRASTRUCTURE: 'Creating Infrastructure',
  CONTROL_PLANE: 'Adding Control Plane Node',
  WORKERS: 'Adding Worker Nodes',
  ADDONS: 'Installing Add-ons',
  DELETION: 'Deleting Cluster',
} as const;
export type Milestone = (typeof Milestone)[keyof typeof Milestone];

export const PROVISIONING_ORDER = [
  Milestone.IMAGE,
  Milestone.INFRASTRUCTURE,
  Milestone.CONTROL_PLANE,
  Milestone.WORKERS,
  Milestone.ADDONS,
] as const;

export type Condition = ConditionMessage;

export type ConditionChange =
  | { type: Milestone; outcome: 'progress'; reason: string; message: string }
  | { type: Milestone; outcome: 'done'; reason: string; message: string }
  | { type: Milestone; outcome: 'failed'; reason: string; message: string; code: string };

/**
 * Applies a change to a condition list (cluster-api's setter): `lastTransitionTime` moves only
 * when the status changes; `attempts` counts failures since the condition last succeeded; the
 * condition worked on is the only `active` one. Pure: returns a new list.
 */
export function setCondition(conditions: readonly Condition[], change: ConditionChange, now: Date): Condition[] {
  const status = change.outcome === 'done' ? 'TRUE' : 'FALSE';
  const previous = conditions.find((c) => c.type === change.type);
  const next: Condition = {
    type: change.type,
    status,
    active: change.outcome !== 'done',
    failed: change.outcome === 'failed',
    reason: change.reason,
    message: change.message,
    code: change.outcome === 'failed' ? change.code : null,
    lastTransitionTime: previous && previous.status === status ? previous.lastTransitionTime : now.toISOString(),
    attempts:
      change.outcome === 'failed'
        ? (previous?.attempts ?? 0) + 1
        : change.outcome === 'done'
          ? 0
          : (previous?.attempts ?? 0),
  };
  const others = conditions
    .filter((c) => c.type !== change.type)
    .map((c) => (next.active && c.active ? { ...c, active: false } : c));
  const order = (t: string) => {
    const i = ([...PROVISIONING_ORDER, Milestone.DELETION] as string[]).indexOf(t);
    return i < 0 ? 99 : i;
  };
  return [...others, next].sort((a, b) => order(a.type) - order(b.type));
}

/** Whether a list holds the same conditions as another, ignoring nothing: for "did anything change". */
export function sameConditions(a: readonly Condition[], b: readonly Condition[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Marks each failed condition with when the orchestrator tries again (`at`, its next
 * reconciliation), and no other condition with anything. Pure: returns a new list.
 */
export function withNextAttempt(conditions: readonly Condition[], at: string | null): Condition[] {
  return conditions.map(({ nextAttemptAt: _stale, ...condition }) =>
    condition.failed && at !== null ? { ...condition, nextAttemptAt: at } : condition,
  );
}

/** What an overview shows of a cluster's progress: the failed milestone, else the one worked on, else none. */
export function headlineCondition(conditions: readonly Condition[]): Condition | null {
  return conditions.find((c) => c.failed) ?? conditions.find((c) => c.active) ?? null;
}
