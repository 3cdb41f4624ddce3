import { type Attributes, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { isCloudError } from './errors.js';
import type { CloudProvider } from './provider.js';
import { wrapProvider } from './wrap-provider.js';

/**
 * Spans of cloud calls (OpenTelemetry's API: no-ops until a process registers the SDK, as the
 * kit's `startTracing` does): one per provider operation (`<cloud> <operation>`, with its region
 * and, when it fails, the classified code and the cloud's own), and one per SDK call beneath it
 * (`EC2 RunInstances`, with its region and the cloud's error code).
 */
const tracer = trace.getTracer('fleetgraph');

/** The region an operation is called for: its first argument, or that argument's `region`. */
function regionOf(args: unknown[]): string | undefined {
  const [first] = args;
  if (typeof first === 'string') return first;
  const region = (first as { region?: unknown } | undefined)?.region;
  return typeof region === 'string' ? region : undefined;
}

/** Runs a cloud call in a CLIENT span; a failure is recorded with its codes and thrown on. */
export async function cloudSpan<T>(name: string, attributes: Attributes, call: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span: Span) => {
    try {
      return await call();
    } catch (error) {
      if (span.isRecording()) {
        const err = error instanceof Error ? error : new Error(String(error));
        span.recordException(err);
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
        if (isCloudError(error)) {
          span.setAttribute('error.type', error.code);
          if (error.cloudCode) span.setAttribute('fleetgraph.cloud.error_code', error.cloudCode);
        } else {
          // An SDK's error: its name is the cloud's code (`InsufficientInstanceCapacity`).
          const code = (error as { Code?: unknown; code?: unknown }).Code ?? (error as { code?: unknown }).code;
          span.setAttribute('error.type', err.name);
          span.setAttribute('fleetgraph.cloud.error_code', typeof code === 'string' ? code : err.name);
        }
      }
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The provider with a span around each operation (see the module's comment). */
export function traceProvider(provider: CloudProvider): CloudProvider {
  return wrapProvider(provider, (operation, args, call) => {
    const region = regionOf(args);
    return cloudSpan(
      `${provider.type} ${operation}`,
      {
        'cloud.provider': provider.type.toLowerCase(),
        'fleetgraph.cloud.operation': operation,
        ...(region && { 'cloud.region': region }),
      },
      call,
    );
  });
}
