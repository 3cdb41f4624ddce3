/**
 * `@jetstream`, the directive that binds a Subscription field to a JetStream subject: its names
 * and SDL, without type-graphql (the gateway reads it; subgraphs declare it through
 * subscription-binding.ts).
 */

/** The spec URL that names `@jetstream` in `@link`; the gateway finds the directive through it. */
export const STREAM_SPEC_URL = 'https://fleetgraph.dev/jetstream/v1.0';

/** The directive's name, without `@`. */
export const STREAM_DIRECTIVE = 'jetstream';

/** Where a new subscription starts on its subject (`JetStreamReplay` in the schema). */
export const StreamReplay = {
  /** With the `after` argument: every retained event after that cursor, then live; without it, live. */
  CURSOR: 'CURSOR',
  /** The last event on the subject (on each subject a wildcard matches) first: the current state; then every change. */
  LAST: 'LAST',
  /** Live events only, from the moment the subscription starts. */
  NONE: 'NONE',
} as const;
export type StreamReplay = (typeof StreamReplay)[keyof typeof StreamReplay];

/** What `@jetstream` says about one Subscription field. */
export interface StreamBinding {
  /**
   * The JetStream subject, with `{name}` placeholders: `{tenantId}` is always the caller's
   * verified tenant (and must appear); every other `{name}` is the field argument of that name,
   * which must be a plain id (letters, digits, `-`, `_`), or `*` when a nullable argument is not
   * given; a `*` token matches any. E.g. `clusters.v1.events.{tenantId}.{clusterId}`. A subject
   * that can match many (a `*`, a nullable argument) needs `project`.
   */
  subject: string;
  /** The JetStream stream holding the subject, e.g. `CLUSTER_EVENTS`. */
  stream: string;
  /**
   * A query selection, with the field's arguments as `$variables`, that the gateway runs with the
   * caller's identity before the subscription starts: a null (or refused) result refuses the
   * subscription exactly like an unknown id. E.g. `cluster(id: $clusterId) { id }`. Optional
   * with `project`.
   */
  authorize?: string;
  /**
   * The event payload's field naming the project the event belongs to: the gateway delivers each
   * event only to callers who may read that project (by their verified identity's roles, per
   * event), and refuses a subscribe whose argument of that name names a project the caller may
   * not read. E.g. `projectId`.
   */
  project?: string;
  /** Where a subscription starts. @default 'NONE' */
  replay?: StreamReplay;
  /**
   * Ends the subscription after the event for which it holds, evaluated on the event payload:
   * `path in [A, B]` or `path == A`, e.g. `status in [READY, FAILED]`. @default never
   */
  complete?: string;
}

/**
 * The SDL a subgraph with `@jetstream` fields needs; `buildSubgraph` prepends it by itself when a
 * Subscription field carries the directive (see `streamTypeDefsFor`). `@composeDirective` keeps
 * `@jetstream` in the supergraph, where the gateway reads it. Composed directives belong to the API
 * schema, so its definition and `JetStreamReplay` are visible to introspection (they cannot be
 * `@inaccessible`); every subgraph declares them identically, so they compose.
 */
export const STREAM_TYPE_DEFS = /* GraphQL */ `
  extend schema @link(url: "${STREAM_SPEC_URL}", import: ["@${STREAM_DIRECTIVE}"]) \
@composeDirective(name: "@${STREAM_DIRECTIVE}")

  "Binds a Subscription field to a JetStream subject; the gateway executes it (see gateway/README.md)."
  directive @${STREAM_DIRECTIVE}(subject: String!, stream: String!, authorize: String, \
replay: JetStreamReplay = NONE, complete: String, project: String) on FIELD_DEFINITION

  "Where a JetStream-bound subscription starts on its subject."
  enum JetStreamReplay {
    "With the after argument: every retained event after that cursor, then live."
    CURSOR
    "The last event on the subject (on each subject a wildcard matches) first: the current state; then every change."
    LAST
    "Live events only."
    NONE
  }
`;

const quote = (value: string) => JSON.stringify(value);

/** The `@jetstream(...)` application for a binding, as SDL. */
export function printStreamDirective(binding: StreamBinding): string {
  const args = [`subject: ${quote(binding.subject)}`, `stream: ${quote(binding.stream)}`];
  if (binding.authorize) args.push(`authorize: ${quote(binding.authorize)}`);
  if (binding.replay) {
    if (!(binding.replay in StreamReplay))
      throw new TypeError(`replay must be one of ${Object.keys(StreamReplay).join(', ')}`);
    args.push(`replay: ${binding.replay}`);
  }
  if (binding.complete) args.push(`complete: ${quote(binding.complete)}`);
  if (binding.project) args.push(`project: ${quote(binding.project)}`);
  return `@${STREAM_DIRECTIVE}(${args.join(', ')})`;
}
