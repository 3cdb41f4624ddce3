import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/**
 * A Prometheus registry with the process's default metrics, and gauges and counters whose value
 * is read at each scrape from what the service already counts, so they never drift from it.
 */
export function createMetricsRegistry() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    gauge(name: string, help: string, read: () => number) {
      return new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    },
    /** A counter mirroring a total kept elsewhere (it only grows there). */
    counter(name: string, help: string, read: () => number) {
      return new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    },
  };
}
