import { headers as natsHeaders, type MsgHdrs } from 'nats';
import type { z } from 'zod';
import { currentRequestId, REQUEST_ID_HEADER } from '../log.js';
import { injectTraceHeaders, tracingEnabled } from '../tracing.js';

/** How the bus encodes, decodes and validates bodies, and the headers it reads and writes. Internal to the kit. */

export const SCHEMA_VERSION_HEADER = 'fleetgraph-schema-version';
/** Why a dead letter could not be consumed. */
export const ERROR_HEADER = 'fleetgraph-error';
/** The subject a dead letter was received on. */
export const SUBJECT_HEADER = 'fleetgraph-subject';
/** Which stored message a dead letter keeps: `<stream>:<sequence>`. */
export const SOURCE_HEADER = 'fleetgraph-source';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const encode = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

export function parseJson(data: Uint8Array): Decoded<unknown> {
  try {
    return { ok: true, value: JSON.parse(decoder.decode(data)) };
  } catch (error) {
    return { ok: false, error: `body is not JSON: ${(error as Error).message}` };
  }
}

/** A body as every consumer of the bus judges it: the schema version header (when sent), JSON, the schema. */
export function validate<T>(
  schema: z.ZodType<T>,
  version: number,
  data: Uint8Array,
  hdrs: MsgHdrs | undefined,
): Decoded<T> {
  const sent = hdrs?.get(SCHEMA_VERSION_HEADER);
  if (sent && Number(sent) !== version) return { ok: false, error: `schema version ${sent} is not ${version}` };
  const json = parseJson(data);
  if (!json.ok) return json;
  const parsed = schema.safeParse(json.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `body does not match schema: ${issue?.path.join('.') || '(root)'}: ${issue?.message}` };
  }
  return { ok: true, value: parsed.data };
}

export function outgoingHeaders(version: number): MsgHdrs {
  const h = natsHeaders();
  h.set(SCHEMA_VERSION_HEADER, String(version));
  const requestId = currentRequestId();
  if (requestId) h.set(REQUEST_ID_HEADER, requestId);
  // The active span's context (the send's own span: traced.ts).
  if (tracingEnabled()) injectTraceHeaders(h);
  return h;
}
