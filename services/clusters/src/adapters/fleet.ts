import type { Bus, Logger, Outbox } from '@fleetgraph/kit';
import { fleetCluster } from '@fleetgraph/schema';

/** How long a deleted cluster's last fleet entry stays in the stream, for watchers that lag behind. */
export const DELETED_ENTRY_TTL_MS = 60_000;

/**
 * Removes a deleted cluster's fleet entry (phase DELETED) from the stream `ttlMs` after it was
 * published: watchers get it live, and a new `fleet` subscription starts with the clusters that
 * exist only. Kept in memory: an entry whose removal a restart forgot stays (one message).
 */
export function forgetDeletedClusters(outbox: Outbox, bus: Bus, log: Logger, ttlMs = DELETED_ENTRY_TTL_MS): void {
  outbox.onPublished(fleetCluster, async (events) => {
    for (const { payload, seq } of events) {
      if (payload.phase !== 'DELETED') continue;
      const subject = fleetCluster.subject(payload);
      const timer = setTimeout(async () => {
        try {
          const manager = await bus.manager();
          // Up to and including this entry only: a later one (never, for a deleted cluster) would stay.
          await manager.streams.purge(fleetCluster.stream, { filter: subject, seq: seq + 1 });
        } catch (error) {
          log.warn({ err: error, subject }, "could not remove a deleted cluster's fleet entry");
        }
      }, ttlMs);
      timer.unref();
    }
  });
}
