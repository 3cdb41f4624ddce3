/**
 * OpenTelemetry traces, set up once per process and used by the kit (HTTP, NATS, the outbox) and
 * the services (orchestrator steps, cloud calls).
 *
 * Instrumentation is manual: the kit starts its spans where it sends and receives, so nothing has
 * to patch modules before they load, and the order of ESM imports does not matter. The active
 * context lives in the kit's one AsyncLocalStorage, beside the request id (scope.ts). Spans started
 * before `startTracing` registers the SDK (or in a process where tracing is off) are the API's
 * no-op spans; @apollo/gateway's tracer is a proxy that turns real once the SDK is registered.
 *
 * Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
 * set and `OTEL_SDK_DISABLED` is not `true`: the SDK is loaded then only, and exports over
 * OTLP/HTTP (JSON). Sampling follows `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`
 * (default `parentbased_always_on`), the service name `OTEL_SERVICE_NAME`, batching `OTEL_BSP_*`.
 */
import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Attributes,
  type Context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { scopeContextManager } from './scope.js';

export { SpanKind, SpanStatusCode };
export type { Attributes, Context, Span };

/** The tracer of every span Fleetgraph's own code starts. */
export const tracer: Tracer = trace.getTracer('fleetgraph');

/** What `startTracing` set up. */
export interface Tracing {
  /** Whether spans are recorded and exported. */
  readonly enabled: boolean;
  /** Exports what is buffered and stops: the last closer of a process. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  /**
   * Exports every span at once to this exporter instead (an in-memory one, in tests), whatever
   * the environment says. @default OTLP/HTTP to the environment's endpoint
   */
  exporter?: SpanExporter;
}

const off: Tracing = { enabled: false, shutdown: async () => {} };

let enabled = false;

/**
 * Whether this process records spans: false until `startTracing` registered the SDK. Hot paths
 * skip what only a trace needs (carrying context, spans) while it is false.
 */
export function tracingEnabled(): boolean {
  return enabled;
}

/** The OTLP endpoint traces go to, when tracing is on. */
export function tracingEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return undefined;
  return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined;
}

/**
 * Registers the OpenTelemetry SDK for this process when an OTLP endpoint is set (see the module's
 * comment), else does nothing: spans stay the API's no-ops. Called first thing by every main.
 * @param serviceName `service.name` unless `OTEL_SERVICE_NAME` says otherwise
 */
export async function startTracing(serviceName: string, options: TracingOptions = {}): Promise<Tracing> {
  const env = options.env ?? process.env;
  if (!options.exporter && !tracingEndpoint(env)) return off;
  if (enabled) throw new Error('tracing is started already');
  // Loaded only when on: a process without tracing never loads the SDK.
  const [{ NodeTracerProvider }, { BatchSpanProcessor, SimpleSpanProcessor }, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
  ]);
  const processor = options.exporter
    ? new SimpleSpanProcessor(options.exporter)
    : new BatchSpanProcessor(new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter());
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win over the default name.
  const resource = resources
    .resourceFromAttributes({ 'service.name': serviceName })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  // The context in the kit's own AsyncLocalStorage (scope.ts) rather than one more of its own.
  provider.register({ contextManager: scopeContextManager });
  enabled = true;
  return {
    enabled: true,
    async shutdown() {
      await provider.shutdown();
      enabled = false;
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/**
 * Runs `fn` in a new active span, which ends when `fn` settles: an error thrown (or rejected) is
 * recorded, and the span's status set to ERROR, before it is thrown on.
 */
export function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context },
  fn: (span: Span) => T,
): T {
  const span = tracer.startSpan(name, { kind: options.kind, attributes: options.attributes }, options.parent);
  const ctx = trace.setSpan(options.parent ?? context.active(), span);
  let result: T;
  try {
    result = context.with(ctx, fn, undefined, span);
  } catch (error) {
    failSpan(span, error);
    span.end();
    throw error;
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        failSpan(span, error);
        span.end();
        throw error;
      },
    ) as T;
  }
  span.end();
  return result;
}

/** Marks a span as failed with `error` (its type and message; a `code` property as `error.type`). */
export function failSpan(span: Span, error: unknown, code?: string): void {
  if (!span.isRecording()) return;
  const err = error instanceof Error ? error : new Error(String(error));
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  const errorCode = code ?? (error as { code?: unknown } | undefined)?.code;
  span.setAttribute('error.type', typeof errorCode === 'string' ? errorCode : err.name);
}

/** Sets attributes on the active span, if one records. */
export function annotateActiveSpan(attributes: Attributes): void {
  if (!enabled) return;
  const span = trace.getActiveSpan();
  if (span?.isRecording()) span.setAttributes(attributes);
}

/** Marks the active span, if any, as failed with `error` (see failSpan). */
export function failActiveSpan(error: unknown, code?: string): void {
  const span = trace.getActiveSpan();
  if (span) failSpan(span, error, code);
}

/** A trace context in W3C form (`traceparent`, `tracestate`), as stored with work done later. */
export type TraceCarrier = Record<string, string>;

/**
 * The active trace context as a W3C carrier, to store with work that continues later (an outbox
 * entry, a cluster's status); undefined when there is none (tracing off, or no span active).
 */
export function traceCarrier(ctx: Context = context.active()): TraceCarrier | undefined {
  if (!trace.getSpanContext(ctx)) return undefined;
  const carrier: TraceCarrier = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent ? carrier : undefined;
}

/**
 * The context a carrier holds, to continue its trace; without one, the root context (a new
 * trace). Never the active context: work taken up later is not part of whatever runs now.
 */
export function contextOf(carrier: TraceCarrier | null | undefined): Context {
  if (!carrier) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carrier);
}

/**
 * Runs `fn` in the trace context a carrier holds, continuing that trace (in a new trace without
 * one): stored work (an outbox entry) taken up later, whatever is running now.
 */
export function withTraceContext<T>(carrier: TraceCarrier | null | undefined, fn: () => T): T {
  if (!enabled) return fn();
  return context.with(contextOf(carrier), fn);
}

/** NATS headers as OpenTelemetry's propagators read and write them. */
interface HeaderLike {
  get(key: string): string;
  set(key: string, value: string): void;
  keys(): string[];
}

const headerGetter: TextMapGetter<HeaderLike> = {
  get: (carrier, key) => carrier.get(key) || undefined,
  keys: (carrier) => carrier.keys(),
};

const headerSetter: TextMapSetter<HeaderLike> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** Writes the trace context of `ctx` (`traceparent`, `tracestate`) into NATS headers. */
export function injectTraceHeaders(headers: HeaderLike, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, headerSetter);
}

/** The context that NATS headers carry, to continue its trace (the root context, a new trace, without). */
export function contextOfHeaders(headers: HeaderLike | undefined): Context {
  if (!headers) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers, headerGetter);
}

/**
 * The trace and span ids of the active span: what log lines carry. Undefined outside a span, and
 * always while tracing is off. A span sampled out has ids too (its trace id is its caller's).
 */
export function activeTraceIds(): { traceId: string; spanId: string } | undefined {
  const span = trace.getActiveSpan();
  if (!span) return undefined;
  const spanContext = span.spanContext();
  return isSpanContextValid(spanContext) ? { traceId: spanContext.traceId, spanId: spanContext.spanId } : undefined;
}

const fetchHeadersSetter: TextMapSetter<Headers> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/**
 * `send` (fetch) with a CLIENT span around each request, named `<method> <name>`, and the trace
 * context sent along in `traceparent`: how the gateway calls its subgraphs.
 */
export function tracedFetch(name: string, send: typeof fetch = fetch): typeof fetch {
  return (input, init) => {
    if (!enabled) return send(input, init);
    const method = init?.method ?? 'GET';
    const url = new URL(input instanceof Request ? input.url : String(input));
    return inSpan(
      `${method} ${name}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': method,
          'server.address': url.hostname,
          'server.port': Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
          'url.full': `${url.origin}${url.pathname}`,
        },
      },
      async (span) => {
        const headers = new Headers(init?.headers);
        propagation.inject(context.active(), headers, fetchHeadersSetter);
        const response = await send(input, { ...init, headers });
        span.setAttribute('http.response.status_code', response.status);
        if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        return response;
      },
    );
  };
}
