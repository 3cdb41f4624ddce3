import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLeadership } from './leadership.js';
import { createLogger } from './log.js';
import { createSqliteStore } from './store/sqlite.js';
import type { Store } from './store/store.js';

const log = createLogger('leadership-test', 'silent');

describe('one holder of a role among replicas sharing a store', () => {
  let dir: string;
  let store: Store;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetgraph-leadership-'));
    store = createSqliteStore({ file: join(dir, 'roles.sqlite') });
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('should give the role to one replica, hand it over when it lets go, and take it over when it dies', async () => {
    let now = 1_000_000;
    const clock = () => now;
    const changes: string[] = [];
    const a = await startLeadership({
      store,
      role: 'r',
      log,
      leaseMs: 60_000,
      owner: 'a',
      now: clock,
      onChange: (l) => changes.push(`a:${l}`),
    });
    const b = await startLeadership({
      store,
      role: 'r',
      log,
      leaseMs: 60_000,
      owner: 'b',
      now: clock,
      onChange: (l) => changes.push(`b:${l}`),
    });
    expect([a.leading, b.leading]).toEqual([true, false]);

    // a lets go (a clean shutdown): b takes the role at its next attempt.
    await a.stop();
    expect(a.leading).toBe(false);
    const c = await startLeadership({ store, role: 'r', log, leaseMs: 60_000, owner: 'c', now: clock });
    expect(c.leading).toBe(true);

    // c dies (stops renewing; its lease stays): nobody else gets the role before the lease runs out...
    const d = await startLeadership({ store, role: 'r', log, leaseMs: 60_000, owner: 'd', now: clock });
    expect(d.leading).toBe(false);
    // ...and c, whose last renewal is older than its lease, no longer counts itself the holder.
    now += 60_001;
    expect(c.leading).toBe(false);
    const e = await startLeadership({ store, role: 'r', log, leaseMs: 60_000, owner: 'e', now: clock });
    expect(e.leading).toBe(true);
    expect(changes).toEqual(['a:true', 'a:false']);
    for (const l of [b, d, e]) await l.stop();
  });
});
