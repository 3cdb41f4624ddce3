import type { z } from 'zod';

/**
 * Subjects are declared once, with the schema of their payload, and built only through these
 * definitions, never by concatenation at call sites (STYLE.md, Names).
 */

/**
 * A request/reply subject served by one service's queue group. The subject may hold `{field}`
 * tokens filled from the request (`agent.v1.{clusterId}.collect-logs`): see `requestSubject`.
 */
export interface RequestDef<Req, Res> {
  readonly kind: 'request';
  readonly subject: string;
  readonly request: z.ZodType<Req>;
  readonly reply: z.ZodType<Res>;
  readonly version: number;
}

/** A JetStream subject family `<prefix>.<token>...`, e.g. `clusters.v1.events.<tenantId>.<clusterId>`. */
export interface EventDef<P, K extends readonly string[] = readonly string[]> {
  readonly kind: 'event';
  readonly prefix: string;
  readonly stream: string;
  readonly schema: z.ZodType<P>;
  readonly version: number;
  /** Names of the subject tokens after the prefix, e.g. ['tenantId', 'clusterId']. */
  readonly keys: K;
  /** The subject of a payload. */
  subject(payload: P): string;
  /** A subject filter: given tokens in order, `*` for the rest (`>` when none are given). */
  filter(...tokens: string[]): string;
}

/** A JetStream stream and its limits. */
export interface StreamDef {
  readonly name: string;
  readonly subjects: readonly string[];
  /** Drop messages older than this. @default unlimited */
  readonly maxAgeMs?: number;
  /** Keep at most this many messages per subject (e.g. 1 for "latest state" subjects). @default unlimited */
  readonly maxMsgsPerSubject?: number;
  /** Window in which a repeated message id is dropped as a duplicate. @default 2 minutes */
  readonly duplicateWindowMs?: number;
}

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

/** A subject token must be a plain id: no dots, wildcards or spaces that would change the subject's meaning. */
export function assertToken(name: string, value: unknown): string {
  if (typeof value !== 'string' || !TOKEN.test(value)) {
    throw new TypeError(`subject token ${name} must match ${TOKEN}, got ${JSON.stringify(value)}`);
  }
  return value;
}

const PLACEHOLDER = /\{(\w+)\}/g;

/** The subject of a request: the definition's subject with `{field}` tokens filled from the request. */
export function requestSubject(def: RequestDef<unknown, unknown>, request: unknown): string {
  return def.subject.replace(PLACEHOLDER, (_m, key: string) => assertToken(key, (request as Record<string, unknown>)?.[key]));
}

/** The subject a server listens on: given tokens filled, the others `*`. */
export function serveSubject(def: RequestDef<unknown, unknown>, tokens: Record<string, string> = {}): string {
  return def.subject.replace(PLACEHOLDER, (_m, key: string) => (key in tokens ? assertToken(key, tokens[key]) : '*'));
}

export function defineRequest<Req, Res>(
  subject: string,
  schemas: { request: z.ZodType<Req>; reply: z.ZodType<Res> },
  version = 1,
): RequestDef<Req, Res> {
  return { kind: 'request', subject, version, ...schemas };
}

export function defineEvent<P extends Record<string, unknown>, const K extends readonly (keyof P & string)[]>(options: {
  prefix: string;
  stream: string;
  schema: z.ZodType<P>;
  keys: K;
  version?: number;
}): EventDef<P, K> {
  const { prefix, keys } = options;
  return {
    kind: 'event',
    prefix,
    stream: options.stream,
    schema: options.schema,
    version: options.version ?? 1,
    keys,
    subject: (payload) => [prefix, ...keys.map((k) => assertToken(k, payload[k]))].join('.'),
    filter: (...tokens) => {
      if (tokens.length === 0) return `${prefix}.>`;
      const given = tokens.map((t, i) => assertToken(keys[i] ?? `#${i}`, t));
      return [prefix, ...given, ...keys.slice(given.length).map(() => '*')].join('.');
    },
  };
}

/** Where a message that no consumer can parse is kept for inspection. */
export const DEAD_LETTER_STREAM: StreamDef = {
  name: 'DEADLETTER',
  subjects: ['deadletter.>'],
  maxAgeMs: 7 * 24 * 3600_000,
};

export const deadLetterSubject = (subject: string) => `deadletter.${subject}`;
