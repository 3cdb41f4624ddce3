import { Counter } from 'prom-client';
import { DURATION_BUCKETS, defineCounter, defineHistogram, processRegistry, secondsSince } from '../metrics.js';
import type { Bus, ConsumeOptions, ListenOptions } from './bus.js';
import { BusError } from './errors.js';
import type { Delivery, FollowOptions } from './jetstream.js';
import type { EventDef, RequestDef, SubjectDef } from './subjects.js';

/**
 * Metrics of NATS, per subject kind: the subject's template or prefix (`agent.v1.{clusterId}.report`,
 * `clusters.v1.lifecycle`), never a subject with its ids or tenant. Outcomes are `ok` or a
 * BusError code (`TIMEOUT`, `NO_RESPONDERS`, ...; `error` for an event handler's throw). Internal
 * to the kit: `createBus` meters every bus.
 */

type HandlerKind = 'request' | 'event' | 'follow' | 'topic';

const metrics = {
  requests: defineHistogram<'subject' | 'outcome'>({
    name: 'fleetgraph_nats_request_duration_seconds',
    help: 'NATS requests sent, until their reply, by subject template and outcome (ok, or the BusError code).',
    labelNames: ['subject', 'outcome'],
  }),
  handlers: defineHistogram<'kind' | 'subject' | 'outcome'>({
    name: 'fleetgraph_nats_handler_duration_seconds',
    help: 'Messages handled, by kind (request, event, follow, topic), subject template or prefix, and outcome (ok, a BusError code, or error).',
    labelNames: ['kind', 'subject', 'outcome'],
    buckets: [0.0001, 0.00025, 0.0005, ...DURATION_BUCKETS],
  }),
  publishes: defineHistogram<'subject' | 'outcome'>({
    name: 'fleetgraph_nats_publish_duration_seconds',
    help: 'JetStream publishes, until the stream acknowledged them, by subject prefix and outcome (ok, error).',
    labelNames: ['subject', 'outcome'],
  }),
  sends: defineCounter<'subject'>({
    name: 'fleetgraph_nats_messages_sent_total',
    help: 'Messages sent on core NATS without acknowledgement, by subject template or prefix.',
    labelNames: ['subject'],
  }),
};

/** Dead letters of the buses closed so far, and the open ones: what the counter adds up. */
const openBuses = new Set<Bus>();
let closedDeadLetters = 0;

if (!processRegistry.getSingleMetric('fleetgraph_nats_dead_letters_total'))
  new Counter({
    name: 'fleetgraph_nats_dead_letters_total',
    help: 'Messages dead-lettered (malformed, or failed on every delivery) by this process.',
    registers: [processRegistry],
    collect() {
      let total = closedDeadLetters;
      for (const bus of openBuses) total += bus.deadLetters;
      this.reset();
      this.inc(total);
    },
  });

const outcomeOf = (error: unknown) => (error instanceof BusError ? error.code : 'error');
const familyOf = (def: SubjectDef<unknown>) => (def.kind === 'topic' ? def.template : def.prefix);

/** Times `fn` (sync or async) into `observe`, with its outcome. */
function timed<T>(observe: (outcome: string, seconds: number) => void, fn: () => T, failure = outcomeOf): T {
  const started = performance.now();
  let result: T;
  try {
    result = fn();
  } catch (error) {
    observe(failure(error), secondsSince(started));
    throw error;
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => {
        observe('ok', secondsSince(started));
        return value;
      },
      (error: unknown) => {
        observe(failure(error), secondsSince(started));
        throw error;
      },
    ) as T;
  }
  observe('ok', secondsSince(started));
  return result;
}

/**
 * Meters every way the bus sends and every handler it runs: requests (until the reply), handlers
 * of requests, events, followed streams and topics, JetStream publishes, core sends, dead letters.
 */
export function meterBus(bus: Bus): void {
  const m = metrics;
  openBuses.add(bus);
  const handled = (kind: HandlerKind, subject: string) => (outcome: string, seconds: number) =>
    m.handlers.observe({ kind, subject, outcome }, seconds);

  const request = bus.request.bind(bus);
  const publish = bus.publish.bind(bus);
  const send = bus.send.bind(bus);
  const serve = bus.serve.bind(bus);
  const consume = bus.consume.bind(bus);
  const follow = bus.follow.bind(bus);
  const listen = bus.listen.bind(bus);
  const close = bus.close.bind(bus);
  bus.request = <Req, Res>(def: RequestDef<Req, Res>, req: Req, options?: { timeoutMs?: number }) =>
    timed(
      (outcome, seconds) => m.requests.observe({ subject: def.subject, outcome }, seconds),
      () => request(def, req, options),
    );
  bus.publish = (def, payload, options) =>
    timed(
      (outcome, seconds) => m.publishes.observe({ subject: def.prefix, outcome }, seconds),
      () => publish(def, payload, options),
      () => 'error',
    );
  bus.send = (def, payload, options) => {
    send(def, payload, options);
    m.sends.inc({ subject: familyOf(def as SubjectDef<unknown>) });
  };
  bus.serve = <Req, Res>(
    def: RequestDef<Req, Res>,
    handler: (request: Req) => Promise<Res>,
    options?: { tokens?: Record<string, string>; queue?: string },
  ) => {
    const observe = handled('request', def.subject);
    // A handler's own failure is INTERNAL to its caller (bus.ts answers so).
    const failure = (error: unknown) => (error instanceof BusError ? error.code : 'INTERNAL');
    return serve(def, (req: Req) => timed(observe, () => handler(req), failure), options);
  };
  bus.consume = <P>(def: EventDef<P>, options: ConsumeOptions<P>) => {
    const observe = handled('event', def.prefix);
    return consume(def, {
      ...options,
      handle: (delivery: Delivery<P>) => timed(observe, () => options.handle(delivery)),
    });
  };
  bus.follow = <P>(def: EventDef<P>, options: FollowOptions<P>) => {
    const observe = handled('follow', def.prefix);
    return follow(def, {
      ...options,
      handle: (delivery: Delivery<P>) => timed(observe, () => options.handle(delivery)),
    });
  };
  bus.listen = <P>(def: SubjectDef<P>, options: ListenOptions<P>) => {
    const subject = familyOf(def as SubjectDef<unknown>);
    // Hot (every agent's reports): the series are looked up once.
    const ok = m.handlers.labels({ kind: 'topic', subject, outcome: 'ok' });
    const observe = handled('topic', subject);
    return listen(def, {
      ...options,
      handle: (payload: P, subjectName: string) => {
        const started = performance.now();
        try {
          options.handle(payload, subjectName);
        } catch (error) {
          observe(outcomeOf(error), secondsSince(started));
          throw error;
        }
        ok.observe(secondsSince(started));
      },
    });
  };
  bus.close = async () => {
    try {
      await close();
    } finally {
      if (openBuses.delete(bus)) closedDeadLetters += bus.deadLetters;
    }
  };
}
