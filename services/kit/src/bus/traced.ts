import { headers as natsHeaders, type MsgHdrs } from 'nats';
import {
  contextOfHeaders,
  inSpan,
  injectTraceHeaders,
  SpanKind,
  type SpanKind as Kind,
  tracingEnabled,
} from '../tracing.js';
import type { Bus } from './bus.js';
import { BusError } from './errors.js';
import type { RequestDef } from './subjects.js';

/**
 * Traces over NATS (W3C `traceparent` in message headers): a span around each send (request,
 * publish, send) whose context the message carries, and around each handling of a received one
 * (serve, consume, follow, watch, listen), continuing the sender's trace. Spans are named after
 * the subject's family (its template or prefix), never a subject's ids. While tracing is off
 * nothing here runs beyond a flag check. Internal to the kit.
 */

const messaging = (operation: string, family: string, subject?: string) => ({
  'messaging.system': 'nats',
  'messaging.operation.name': operation,
  'messaging.destination.template': family,
  ...(subject && { 'messaging.destination.name': subject }),
});

/**
 * Runs the handling of a received message in a span (`process <family>`, a child of the context
 * its headers carry), or just runs it while tracing is off.
 */
export function receiving<T>(
  family: string,
  msg: { subject: string; headers?: MsgHdrs },
  fn: () => T,
  kind: Kind = SpanKind.CONSUMER,
): T {
  if (!tracingEnabled()) return fn();
  return inSpan(
    `process ${family}`,
    { kind, attributes: messaging('process', family, msg.subject), parent: contextOfHeaders(msg.headers) },
    fn,
  );
}

/** Headers carrying the active trace context, for a message sent without other headers; undefined while tracing is off. */
export function traceHeaders(): MsgHdrs | undefined {
  if (!tracingEnabled()) return undefined;
  const h = natsHeaders();
  injectTraceHeaders(h);
  return h;
}

/**
 * Puts a span around every send of the bus (`request <template>`, `publish <prefix>`,
 * `send <family>`): the headers of the message it sends carry that span's context
 * (codec.ts's outgoingHeaders, traceHeaders).
 */
export function traceSends(bus: Bus): void {
  const request = bus.request.bind(bus);
  const publish = bus.publish.bind(bus);
  const send = bus.send.bind(bus);
  bus.request = <Req, Res>(def: RequestDef<Req, Res>, req: Req, options?: { timeoutMs?: number }) => {
    if (!tracingEnabled()) return request(def, req, options);
    return inSpan(
      `request ${def.subject}`,
      { kind: SpanKind.CLIENT, attributes: messaging('request', def.subject) },
      async (span): Promise<Res> => {
        try {
          return await request(def, req, options);
        } catch (error) {
          // The answer's code says what went wrong (NOT_FOUND, TIMEOUT, ...).
          if (error instanceof BusError) span.setAttribute('fleetgraph.bus.error_code', error.code);
          throw error;
        }
      },
    );
  };
  bus.publish = (def, payload, options) => {
    if (!tracingEnabled()) return publish(def, payload, options);
    let subject: string | undefined;
    try {
      subject = def.subject(payload);
    } catch {
      // Not an event of its definition: publish refuses it.
    }
    return inSpan(
      `publish ${def.prefix}`,
      { kind: SpanKind.PRODUCER, attributes: messaging('publish', def.prefix, subject) },
      async (span) => {
        const ack = await publish(def, payload, options);
        span.setAttribute('messaging.message.id', options?.msgId ?? '');
        span.setAttribute('fleetgraph.stream.seq', ack.seq);
        return ack;
      },
    );
  };
  bus.send = (def, payload, options) => {
    if (!tracingEnabled()) return send(def, payload, options);
    const family = def.kind === 'topic' ? def.template : def.prefix;
    inSpan(`send ${family}`, { kind: SpanKind.PRODUCER, attributes: messaging('send', family) }, () =>
      send(def, payload, options),
    );
  };
}
