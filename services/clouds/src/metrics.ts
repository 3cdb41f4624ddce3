import { Histogram, register } from 'prom-client';
import { isCloudError } from './errors.js';
import type { CloudProvider } from './provider.js';
import { wrapProvider } from './wrap-provider.js';

/**
 * `fleetgraph_cloud_call_duration_seconds`: every provider operation, by cloud, operation and
 * outcome (`ok`, the classified CloudErrorCode, or `error` for anything else), in the process's
 * Prometheus registry (prom-client's default, the one the kit serves at /metrics).
 */

const NAME = 'fleetgraph_cloud_call_duration_seconds';

function callDuration(): Histogram<'cloud' | 'operation' | 'outcome'> {
  return (
    (register.getSingleMetric(NAME) as Histogram<'cloud' | 'operation' | 'outcome'> | undefined) ??
    new Histogram({
      name: NAME,
      help: 'Calls to a cloud provider (their SDK retries included), by cloud, operation and outcome (ok, the classified error code, or error).',
      labelNames: ['cloud', 'operation', 'outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [register],
    })
  );
}

const CALL_DURATION = callDuration();

/** The provider with each operation timed into `fleetgraph_cloud_call_duration_seconds`. */
export function meterProvider(provider: CloudProvider): CloudProvider {
  const cloud = provider.type;
  return wrapProvider(provider, async (operation, _args, call) => {
    const started = performance.now();
    let outcome = 'ok';
    try {
      return await call();
    } catch (error) {
      outcome = isCloudError(error) ? error.code : 'error';
      throw error;
    } finally {
      CALL_DURATION.observe({ cloud, operation, outcome }, (performance.now() - started) / 1000);
    }
  });
}
