import type { Bus } from '../bus/bus.js';
import { rawOf, type RawNats } from '../bus/raw.js';

export type { RawNats };

/**
 * The NATS connection, JetStream client and manager under a bus, for tests only: to publish what
 * the bus refuses to send (a malformed body, another schema version), to subscribe without
 * validation, or to inspect streams. Services never do this: the bus's typed surface is theirs.
 */
export function rawNats(bus: Bus): RawNats {
  return rawOf(bus);
}
