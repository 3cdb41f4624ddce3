import { failSpan, inSpan } from '@fleetgraph/kit';
import type { ClusterPhase } from '@fleetgraph/schema';
import { Milestone, PROVISIONING_ORDER, setCondition, type Condition } from '../domain/conditions.js';
import { notePhase } from './metrics.js';
import {
  addonsPhase,
  deletionPhase,
  imagePhase,
  infrastructurePhase,
  machinesPhase,
  type Phase,
  type PhaseResult,
  type ReconcileDeps,
  type Scope,
} from './phases.js';

/** Steps in a row that failed a check, after which a reached milestone that cannot be checked is failed. */
export const CHECKS_BEFORE_FAILED = 3;

/** The phases of provisioning (and of every later convergence), in milestone order. */
export const PHASES: Record<(typeof PROVISIONING_ORDER)[number], Phase> = {
  [Milestone.IMAGE]: imagePhase,
  [Milestone.INFRASTRUCTURE]: infrastructurePhase,
  [Milestone.CONTROL_PLANE]: machinesPhase('CONTROL_PLANE'),
  [Milestone.WORKERS]: machinesPhase('WORKER'),
  [Milestone.ADDONS]: addonsPhase,
};

/** What a step decided about the next one. */
export type StepOutcome =
  | { kind: 'converged' }
  | { kind: 'progress'; requeueMs: number }
  | { kind: 'failed' }
  | { kind: 'deleted' };

/**
 * One level-triggered reconcile step: compare the definition with what is observed, run the
 * phases in order until one is not done, and record conditions and events on the scope. A
 * failure is recorded, never thrown: the caller requeues with backoff and the next attempt may
 * succeed.
 */
export async function reconcileStep(deps: ReconcileDeps, scope: Scope, now: () => Date): Promise<StepOutcome> {
  const { spec, status } = scope;
  // Counted over steps in a row that failed a check, and only those: another failure resets it.
  const checksBefore = status.checkFailures ?? 0;
  status.checkFailures = 0;
  const record = (type: Milestone, result: Awaited<ReturnType<Phase>>) => {
    notePhase(type, result);
    const before = status.conditions.find((c) => c.type === type);
    // A milestone already reached that could not be checked again (the cloud could not be
    // observed) stays reached: the failure is an event, with the cloud's words, and the step is
    // retried with backoff, until CHECKS_BEFORE_FAILED steps in a row failed to check it (revoked
    // credentials, say): then the condition fails, so that it no longer reads as fine. A change
    // that was found and could not be made unsets it at once.
    const checkFailed = before?.status === 'TRUE' && result.outcome === 'failed' && result.check === true;
    if (checkFailed) status.checkFailures = checksBefore + 1;
    if (checkFailed && (status.checkFailures ?? 0) < CHECKS_BEFORE_FAILED) {
      scope.events.push({
        severity: 'WARNING',
        reason: result.reason,
        message: `${type} could not be checked (${result.code}): ${result.message}`,
        object: `cluster/${spec.name}`,
      });
      return;
    }
    status.conditions = setCondition(status.conditions, { type, ...result } as never, now());
    const after = status.conditions.find((c) => c.type === type)!;
    noteTransition(scope, before, after);
  };

  if (spec.deletionRequested) {
    setPhase(scope, 'DELETING');
    const result = await tracedPhase(Milestone.DELETION, deletionPhase, deps, scope);
    record(Milestone.DELETION, result);
    if (result.outcome === 'done') {
      setPhase(scope, 'DELETED');
      status.observedGeneration = spec.generation;
      return { kind: 'deleted' };
    }
    return result.outcome === 'failed'
      ? { kind: 'failed' }
      : { kind: 'progress', requeueMs: result.requeueMs ?? deps.pollMs };
  }

  if (status.phase === 'PENDING') setPhase(scope, 'PROVISIONING');
  if (status.phase === 'RUNNING' && spec.generation > status.observedGeneration) setPhase(scope, 'UPDATING');

  for (const milestone of PROVISIONING_ORDER) {
    const result = await tracedPhase(milestone, PHASES[milestone], deps, scope);
    record(milestone, result);
    if (result.outcome === 'failed') return { kind: 'failed' };
    if (result.outcome === 'progress') return { kind: 'progress', requeueMs: result.requeueMs ?? deps.pollMs };
  }
  status.observedGeneration = spec.generation;
  setPhase(scope, 'RUNNING');
  return { kind: 'converged' };
}

/** Runs a phase in a span `reconcile <milestone>` with the cluster id, the milestone and its outcome. */
function tracedPhase(milestone: Milestone, phase: Phase, deps: ReconcileDeps, scope: Scope): Promise<PhaseResult> {
  return inSpan(
    `reconcile ${milestone}`,
    { attributes: { 'fleetgraph.cluster.id': scope.spec.id, 'fleetgraph.reconcile.phase': milestone } },
    async (span) => {
      const result = await phase(deps, scope);
      span.setAttribute('fleetgraph.reconcile.result', result.outcome);
      if (result.outcome === 'failed') failSpan(span, new Error(result.message), result.code);
      return result;
    },
  );
}

function setPhase(scope: Scope, phase: ClusterPhase) {
  if (scope.status.phase === phase) return;
  scope.events.push({
    severity: 'NORMAL',
    reason: `Phase${phase[0]}${phase.slice(1).toLowerCase()}`,
    message: `cluster is ${phase.toLowerCase()}`,
    object: `cluster/${scope.spec.name}`,
  });
  scope.status.phase = phase;
}

/** Events for condition transitions: a milestone starts, fails (every attempt), recovers, completes. */
function noteTransition(scope: Scope, before: Condition | undefined, after: Condition) {
  const object = `cluster/${scope.spec.name}`;
  if (after.failed) {
    scope.events.push({
      severity: 'WARNING',
      reason: after.reason ?? 'Failed',
      message: `${after.type} failed (attempt ${after.attempts}, ${after.code}): ${after.message}`,
      object,
    });
    return;
  }
  if (before?.failed)
    scope.events.push({
      severity: 'NORMAL',
      reason: 'Recovered',
      message: `${after.type} recovered after ${before.attempts} failed attempt(s)`,
      object,
    });
  if (after.status === 'TRUE' && before?.status !== 'TRUE') {
    scope.events.push({
      severity: 'NORMAL',
      reason: after.reason ?? 'Done',
      message: `${after.type}: ${after.message}`,
      object,
    });
  } else if (after.status === 'FALSE' && (before?.status !== 'FALSE' || before.message !== after.message)) {
    scope.events.push({
      severity: 'NORMAL',
      reason: after.reason ?? 'Progressing',
      message: `${after.type}: ${after.message}`,
      object,
    });
  }
}
