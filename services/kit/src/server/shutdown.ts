import { ConfigError } from '../env.js';
import type { Logger } from '../log.js';

/**
 * Runs the closers in order on SIGINT or SIGTERM (each given `timeoutMs` at most), then exits.
 * A second signal exits at once.
 */
export function onShutdown(log: Logger, closers: readonly (() => Promise<unknown>)[], timeoutMs = 10_000): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'shutting down');
    for (const close of closers) {
      const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs, 'timeout').unref());
      const outcome = await Promise.race([
        close().then(
          () => 'ok',
          (error: unknown) => error,
        ),
        timer,
      ]);
      if (outcome !== 'ok') log.warn({ outcome: String(outcome) }, 'a closer did not finish cleanly');
    }
    log.info('stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

/** Logs and exits on a failure before the process could serve. */
export function exitOnStartupFailure(log: Logger) {
  return (error: unknown) => {
    // A configuration problem is the operator's to fix: one plain line per variable on stderr.
    if (error instanceof ConfigError) process.stderr.write(`${error.message}\n`);
    log.fatal({ err: error }, 'failed to start');
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100).unref();
  };
}
