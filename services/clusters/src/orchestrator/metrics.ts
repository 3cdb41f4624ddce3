import { CloudErrorCodes } from '@fleetgraph/clouds';
import { defineCounter, defineHistogram, REMOTE_CALL_BUCKETS } from '@fleetgraph/kit';
import { Milestone } from '../domain/conditions.js';
import type { PhaseResult } from './phases.js';

/**
 * The orchestrator's metrics: each step by the cluster's phase and what it decided, and each
 * reconcile phase (a milestone) by its result, failures by their code.
 */

/** A milestone as a label: its key (`CONTROL_PLANE`), not its title. */
const MILESTONE_KEYS = new Map<string, string>(Object.entries(Milestone).map(([key, title]) => [title, key]));

/** Failure codes kept as labels: the cloud's classified codes; anything else is `other`. */
const CODES: ReadonlySet<string> = new Set(Object.keys(CloudErrorCodes));

const metrics = {
  steps: defineHistogram<'phase' | 'result'>({
    name: 'fleetgraph_orchestrator_step_duration_seconds',
    help: "Reconcile steps, by the cluster's phase when the step began (PROVISIONING, RUNNING, UPDATING, DELETING, ...) and result (converged, progress, failed, deleted).",
    labelNames: ['phase', 'result'],
    buckets: REMOTE_CALL_BUCKETS,
  }),
  phases: defineCounter<'phase' | 'result'>({
    name: 'fleetgraph_orchestrator_phases_total',
    help: 'Reconcile phases run, by milestone (IMAGE, INFRASTRUCTURE, CONTROL_PLANE, WORKERS, ADDONS, DELETION) and result (done, progress, failed).',
    labelNames: ['phase', 'result'],
  }),
  failures: defineCounter<'phase' | 'code'>({
    name: 'fleetgraph_orchestrator_phase_failures_total',
    help: 'Reconcile phases that failed, by milestone and code (QUOTA_EXCEEDED, RATE_LIMITED, UNAUTHORIZED, RESOURCES_DEPLETED, INVALID_CONFIGURATION, NOT_FOUND, TRANSIENT, or other).',
    labelNames: ['phase', 'code'],
  }),
};

/** Counts one phase's result (and its failure's code). */
export function notePhase(milestone: Milestone, result: PhaseResult): void {
  const m = metrics;
  const phase = MILESTONE_KEYS.get(milestone) ?? 'other';
  m.phases.inc({ phase, result: result.outcome });
  if (result.outcome === 'failed') m.failures.inc({ phase, code: CODES.has(result.code) ? result.code : 'other' });
}

/** Times one step: the returned function records it with its result. */
export function timeStep(phase: string): (result: string) => void {
  const m = metrics;
  const started = performance.now();
  return (result) => m.steps.observe({ phase, result }, (performance.now() - started) / 1000);
}
