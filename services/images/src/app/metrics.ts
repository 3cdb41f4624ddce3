import { defineHistogram, JOB_BUCKETS } from '@fleetgraph/kit';

/** Image jobs (copies of out-of-the-box images, builds of customised ones) that ended. */
const jobs = defineHistogram<'kind' | 'result'>({
  name: 'fleetgraph_image_job_duration_seconds',
  help: 'Image jobs that ended, from the start of their attempt, by kind (copy, build) and result (READY, FAILED).',
  labelNames: ['kind', 'result'],
  buckets: JOB_BUCKETS,
});

/** Records an image job that ended READY or FAILED, its attempt started at `startedAt` (ISO-8601). */
export function noteImageJob(kind: 'copy' | 'build', result: 'READY' | 'FAILED', startedAt: string, now: Date): void {
  const seconds = Math.max(0, (now.getTime() - Date.parse(startedAt)) / 1000);
  jobs.observe({ kind, result }, Number.isFinite(seconds) ? seconds : 0);
}
