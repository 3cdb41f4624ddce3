import type { z } from 'zod';

/**
 * Subjects are declared once, with the schema of their payload, and built only through these
 * definitions, never by concatenation at call sites (STYLE.md, Names). Three kinds: requests
 * (`defineRequest`, request/reply), events (`defineEvent`, JetStream) and topics (`defineTopic`,
 * core NATS). Every definition lives in `@fleetgraph/schema`'s contracts.
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
  /**
   * The inbox prefix its requesters' replies must come to, with `{field}` tokens filled from the
   * request (`_INBOX_{clusterId}`: a cluster's agent's own). Without it, any client inbox
   * (`_INBOX.` or `_INBOX_<token>.`). A server answers nowhere else: see `isReplyInbox`.
   */
  readonly replyPrefix?: string;
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
  /**
   * The subject with a `{key}` placeholder per token (a fixed value where `fixed` gives one), as
   * `@jetstream` bindings take it: `clusters.v1.events.{tenantId}.{clusterId}`.
   */
  subjectTemplate(fixed?: Partial<Record<K[number], string>>): string;
}

/**
 * A core NATS subject family (at-most-once, no stream), e.g. `agent.v1.{clusterId}.report`: for
 * messages that are worth nothing once missed (a report the next one replaces, a piece of a
 * stream with its own flow control). Its `{field}` tokens come from the payload, or are given.
 */
export interface TopicDef<P> {
  readonly kind: 'topic';
  /** The template, e.g. `agent.v1.{clusterId}.report`. */
  readonly template: string;
  readonly schema: z.ZodType<P>;
  readonly version: number;
  /** The subject of one payload (its tokens taken from the payload's fields). */
  subject(payload: P): string;
  /** The subject with these tokens. */
  subjectOf(tokens: Record<string, string>): string;
  /** Every subject of the family (`*` for each token), for a subscriber. */
  readonly wildcard: string;
  /** The tokens of a received subject, or null when it is not of this family. */
  parse(subject: string): Record<string, string> | null;
}

/** A subject family whose messages can be sent without waiting for an acknowledgement, and listened to. */
export type SubjectDef<P> = EventDef<P> | TopicDef<P>;

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

/** A template's `{field}` tokens filled from `values`, each checked to be a token. */
function fillTokens(template: string, values: unknown): string {
  return template.replace(PLACEHOLDER, (_m, key: string) =>
    assertToken(key, (values as Record<string, unknown>)?.[key]),
  );
}

/** The subject of a request: the definition's subject with `{field}` tokens filled from the request. */
export function requestSubject(def: RequestDef<unknown, unknown>, request: unknown): string {
  return fillTokens(def.subject, request);
}

/** The subject a server listens on: given tokens filled, the others `*`. */
export function serveSubject(
  def: Pick<RequestDef<unknown, unknown>, 'subject'>,
  tokens: Record<string, string> = {},
): string {
  return def.subject.replace(PLACEHOLDER, (_m, key: string) => (key in tokens ? assertToken(key, tokens[key]) : '*'));
}

export function defineRequest<Req, Res>(
  subject: string,
  schemas: { request: z.ZodType<Req>; reply: z.ZodType<Res>; replyPrefix?: string },
  version = 1,
): RequestDef<Req, Res> {
  return { kind: 'request', subject, version, ...schemas };
}

const INBOX = /^_INBOX(?:_[A-Za-z0-9_-]{1,128})?\.[A-Za-z0-9_.-]+$/;

/**
 * Whether a subject is a client's inbox (`_INBOX.…` or `_INBOX_<token>.…`): the only subjects a
 * server answers requests on. A server publishes its answer with every right of its own user;
 * answering on any subject a requester names would let a confined client (an agent) publish
 * there through it.
 */
export const isInbox = (subject: string): boolean => INBOX.test(subject);

/** Whether a request's reply subject is an inbox under the definition's `replyPrefix` (any inbox without one). */
export function isReplyInbox(def: RequestDef<unknown, unknown>, request: unknown, reply: string): boolean {
  if (!isInbox(reply)) return false;
  if (!def.replyPrefix) return true;
  return reply.startsWith(`${fillTokens(def.replyPrefix, request)}.`);
}

/**
 * The subject a listener subscribes to: the given tokens filled, `*` for the others. Tokens not of
 * the family are refused, so that a typo cannot widen a subscription.
 */
export function listenSubject(def: SubjectDef<unknown>, tokens: Record<string, string> = {}): string {
  const known = def.kind === 'event' ? def.keys : [...def.template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  for (const key of Object.keys(tokens)) {
    if (!known.includes(key))
      throw new TypeError(`${key} is not a token of ${def.kind === 'event' ? def.prefix : def.template}`);
  }
  const token = (key: string) => (key in tokens ? assertToken(key, tokens[key]) : '*');
  return def.kind === 'event'
    ? [def.prefix, ...def.keys.map(token)].join('.')
    : def.template.replace(PLACEHOLDER, (_m, key: string) => token(key));
}

/** The subject a message of `def` goes to: its tokens from `tokens` when given, else from the payload. */
export function sendSubject<P>(def: SubjectDef<P>, payload: P, tokens?: Record<string, string>): string {
  if (!tokens) return def.subject(payload);
  if (def.kind === 'topic') return def.subjectOf(tokens);
  return [def.prefix, ...def.keys.map((k) => assertToken(k, tokens[k]))].join('.');
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
    subjectTemplate: (fixed = {}) =>
      [prefix, ...keys.map((k) => (fixed as Record<string, string | undefined>)[k] ?? `{${k}}`)].join('.'),
  };
}

/** Defines a core NATS subject family: `template` holds `{field}` tokens, filled from the payload or given. */
export function defineTopic<P extends Record<string, unknown>>(
  template: string,
  schema: z.ZodType<P>,
  version = 1,
): TopicDef<P> {
  const parts = template.split('.');
  const fill = (tokens: Record<string, unknown>) => fillTokens(template, tokens);
  return {
    kind: 'topic',
    template,
    schema,
    version,
    subject: (payload) => fill(payload),
    subjectOf: (tokens) => fill(tokens),
    wildcard: template.replace(PLACEHOLDER, '*'),
    parse(subject) {
      const given = subject.split('.');
      if (given.length !== parts.length) return null;
      const tokens: Record<string, string> = {};
      for (let i = 0; i < parts.length; i++) {
        const key = /^\{(\w+)\}$/.exec(parts[i]!)?.[1];
        if (key) tokens[key] = given[i]!;
        else if (parts[i] !== given[i]) return null;
      }
      return tokens;
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
