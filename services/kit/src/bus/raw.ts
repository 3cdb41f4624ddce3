import type { JetStreamClient, JetStreamManager, NatsConnection } from 'nats';

/**
 * The NATS client under a bus. Only the kit holds it: services talk through the bus's typed
 * surface, and tests reach it through `rawNats` (`@fleetgraph/kit/testing`) to send what the bus
 * never would (malformed bodies, foreign schema versions) or to look at streams directly.
 */
export interface RawNats {
  readonly connection: NatsConnection;
  readonly jetstream: JetStreamClient;
  /** The bus's JetStream manager, made once. */
  manager(): Promise<JetStreamManager>;
}

const raws = new WeakMap<object, RawNats>();

export function registerRaw(bus: object, raw: RawNats): void {
  raws.set(bus, raw);
}

export function rawOf(bus: object): RawNats {
  const raw = raws.get(bus);
  if (!raw) throw new TypeError('not a bus made by createBus');
  return raw;
}
