import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, register, Registry } from 'prom-client';

/**
 * Prometheus metrics. Every process has one registry, prom-client's default one: the kit (HTTP
 * requests, NATS, leases) and the services define their metrics on it with `defineCounter`,
 * `defineHistogram` and `defineGauge`, once per process however many buses, servers or workers
 * a process (or a test) makes. What belongs to one instance (a gauge read from one engine's state)
 * goes in a registry of its own (`createMetricsRegistry`), served beside it by `metricsHandler`.
 *
 * Names follow Prometheus' conventions: a `fleetgraph_` prefix, the unit in the name, base units
 * (seconds, bytes), `_total` on counters; every label has a bounded set of values (a subject's
 * template, never its ids; an operation name from a capped set).
 */

/** A Prometheus registry (prom-client's), for packages that do not depend on prom-client themselves. */
export type MetricsRegistry = Registry;

/** The process's registry (prom-client's default). */
export const processRegistry: Registry = register;

/** Buckets for requests and handlers, in seconds: 1 ms to 10 s. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
/** Buckets for calls to clouds and other remote systems, in seconds: 10 ms to 2 min. */
export const REMOTE_CALL_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] as const;
/** Buckets for jobs (image builds, log collections), in seconds: 1 s to 2 h. */
export const JOB_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200] as const;

interface MetricDefinition<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

/** The metric of that name in the process's registry, or undefined. */
function existing<M>(name: string): M | undefined {
  return processRegistry.getSingleMetric(name) as M | undefined;
}

/** A counter of the process's registry, made on first definition and shared by every later one. */
export function defineCounter<L extends string = never>(definition: MetricDefinition<L>): Counter<L> {
  return (
    existing<Counter<L>>(definition.name) ??
    new Counter<L>({ ...definition, labelNames: definition.labelNames ?? [], registers: [processRegistry] })
  );
}

/** A histogram of the process's registry (buckets in the metric's unit), made once per process. */
export function defineHistogram<L extends string = never>(
  definition: MetricDefinition<L> & { buckets?: readonly number[] },
): Histogram<L> {
  return (
    existing<Histogram<L>>(definition.name) ??
    new Histogram<L>({
      ...definition,
      labelNames: definition.labelNames ?? [],
      buckets: [...(definition.buckets ?? DURATION_BUCKETS)],
      registers: [processRegistry],
    })
  );
}

/** A gauge of the process's registry, made once per process. */
export function defineGauge<L extends string = never>(definition: MetricDefinition<L>): Gauge<L> {
  return (
    existing<Gauge<L>>(definition.name) ??
    new Gauge<L>({ ...definition, labelNames: definition.labelNames ?? [], registers: [processRegistry] })
  );
}

/** Seconds since `startedAt` (a `performance.now()` reading). */
export function secondsSince(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}

/**
 * Bounds a label whose values come from outside (a client's operation names): the `known` values
 * and the first `max` others seen are kept as they are, every later one is `other`.
 * @default max 100
 */
export function capLabel(options: { known?: Iterable<string>; max?: number } = {}): (value: string) => string {
  const known = new Set(options.known ?? []);
  const seen = new Set<string>();
  const max = options.max ?? 100;
  return (value) => {
    if (known.has(value) || seen.has(value)) return value;
    if (seen.size >= max) return 'other';
    seen.add(value);
    return value;
  };
}

/** Starts collecting prom-client's process and Node.js metrics in the process's registry, once. */
function collectDefaults(): void {
  if (existing('process_cpu_user_seconds_total')) return;
  collectDefaultMetrics({ register: processRegistry });
}

/**
 * GET /metrics: the process's registry (with the process and Node.js defaults, collected from
 * the first call on) followed by each instance registry given.
 */
export function metricsHandler(...registries: Registry[]): RequestHandler {
  collectDefaults();
  return (_req, res, next) => {
    Promise.all([processRegistry, ...registries].map((registry) => registry.metrics()))
      .then((texts) => {
        res.type(processRegistry.contentType).send(texts.join('\n'));
      })
      .catch(next);
  };
}

/**
 * A registry of one instance's own metrics (served beside the process's by `metricsHandler`):
 * gauges and counters whose value is read at each scrape from what the instance already counts,
 * so they never drift from it.
 */
export function createMetricsRegistry() {
  const registry = new Registry();
  return {
    registry,
    gauge(name: string, help: string, read: () => number | Promise<number>) {
      return new Gauge({
        name,
        help,
        registers: [registry],
        async collect() {
          this.set(await read());
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
