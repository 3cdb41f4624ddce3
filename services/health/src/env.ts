import { parseEnv, serviceEnvShape } from '@fleetgraph/kit';
import { z } from 'zod';

const UNITS = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3600_000, d: 86_400_000 } as const;

/** A duration: milliseconds as a plain number, or with a unit: `500ms`, `30s`, `10m`, `24h`, `7d`. */
export const duration = z
  .string()
  .regex(/^\d+(\.\d+)?(ms|s|m|min|h|d)?$/, 'a duration such as 600000, 30s, 10m, 24h')
  .transform((value) => {
    const [, number, unit] = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(value)!;
    return Math.round(Number(number) * UNITS[(unit || 'ms') as keyof typeof UNITS]);
  })
  .pipe(z.number().int().positive());

const shareOf = z.coerce.number().gt(0).max(1);

/** The health service's environment; see the README for each variable. */
export const readEnv = () =>
  parseEnv({
    ...serviceEnvShape,
    PORT: z.coerce.number().int().min(0).max(65535).default(4004),
    HEALTH_HEARTBEAT_TIMEOUT: duration.default(10 * 60_000),
    HEALTH_LATE_AFTER_INTERVALS: z.coerce.number().int().min(1).default(3),
    HEALTH_NODE_CONDITION_THRESHOLD: duration.default(5 * 60_000),
    HEALTH_METRICS_WINDOW: duration.default(10 * 60_000),
    HEALTH_CPU_THRESHOLD: shareOf.default(0.9),
    HEALTH_MEMORY_THRESHOLD: shareOf.default(0.9),
    HEALTH_DISK_THRESHOLD: shareOf.default(0.9),
    HEALTH_SAMPLE_RETENTION: duration.default(24 * 3600_000),
    HEALTH_SAMPLE_BUCKET: duration.default(5 * 60_000),
    HEALTH_PERSIST_EVERY: duration.default(5 * 60_000),
    HEALTH_FLUSH_INTERVAL: duration.default(1000),
    HEALTH_TICK: duration.default(1000),
    /** How long the replica that writes and publishes holds that role unless it renews it (a dead one's is taken over after it). */
    HEALTH_LEADER_LEASE: duration.default(15_000),
  });
export type Env = ReturnType<typeof readEnv>;
