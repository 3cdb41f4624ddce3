import { defineCounter, defineHistogram, JOB_BUCKETS } from '@fleetgraph/kit';

/** Log bundles collected: how long, how large, and why the failed ones failed. */
const metrics = {
  collections: defineHistogram<'result'>({
    name: 'fleetgraph_log_bundle_duration_seconds',
    help: 'Log collections that ended, from their start to the archive being ready (or the failure), by result (READY, FAILED).',
    labelNames: ['result'],
    buckets: JOB_BUCKETS,
  }),
  size: defineHistogram({
    name: 'fleetgraph_log_bundle_size_bytes',
    help: 'Archives of log bundles that became READY, in bytes.',
    buckets: [1e4, 1e5, 1e6, 1e7, 5e7, 1e8, 2.5e8, 5e8, 1e9],
  }),
  failures: defineCounter<'code'>({
    name: 'fleetgraph_log_bundle_failures_total',
    help: 'Log collections that failed, by code (AGENT_UNREACHABLE, AGENT_TIMEOUT, AGENT_REFUSED, AGENT_FAILED, STREAM_TIMEOUT, STREAM_BROKEN, TOO_LARGE, DEADLINE, STOPPED, INTERNAL).',
    labelNames: ['code'],
  }),
};

/** Records a collection that ended READY with an archive of `sizeBytes`. */
export function noteBundleReady(startedAt: Date, sizeBytes: number): void {
  const m = metrics;
  m.collections.observe({ result: 'READY' }, (Date.now() - startedAt.getTime()) / 1000);
  m.size.observe(sizeBytes);
}

/** Records a collection that failed (`code`: the CollectionError's, or INTERNAL). */
export function noteBundleFailed(startedAt: Date, code: string): void {
  const m = metrics;
  m.collections.observe({ result: 'FAILED' }, (Date.now() - startedAt.getTime()) / 1000);
  m.failures.inc({ code });
}
