/**
 * The gateway's query limits (see gateway/README.md, Limits): tokens, depth, aliases, directives
 * and cost, measured the same way for every operation on every transport (POST /graphql,
 * graphql-ws, Server-Sent Events), and refused with the same error. The cost is measured with the
 * operation's coerced variable values, so a page size given as a variable counts like a literal.
 *
 * graphql is imported through subscriptions/graphql.js, the one instance the gateway's schema and
 * documents come from (see there): getVariableValues and getArgumentValues check types by instanceof.
 */
import type { ErrorCode } from '@fleetgraph/kit/core';
import {
  getArgumentValues,
  getNamedType,
  getNullableType,
  getVariableValues,
  GraphQLError,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  Lexer,
  Source,
  TokenKind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
} from './subscriptions/graphql.js';

/** The limits of every operation (see the README for what each measures). */
export const LIMITS = {
  maxTokens: 1000,
  maxDepth: 6,
  maxAliases: 15,
  maxDirectives: 50,
  maxCost: 50_000,
} as const;

export type Limits = { readonly [K in keyof typeof LIMITS]: number };

/** What a limit error names. */
export type LimitName = 'tokens' | 'depth' | 'aliases' | 'directives' | 'cost';

/** The code of every limit error (in the registry, services/kit/src/errors.ts). */
export const QUERY_LIMIT_EXCEEDED: ErrorCode = 'QUERY_LIMIT_EXCEEDED';
/** The code of a page size outside the bounds its field documents. */
const BAD_USER_INPUT: ErrorCode = 'BAD_USER_INPUT';

const WHAT: Record<LimitName, string> = {
  tokens: 'Query token count',
  depth: 'Query depth',
  aliases: 'Query alias count',
  directives: 'Query directive count',
  cost: 'Query cost',
};

/**
 * The error of an operation over a limit, e.g. "Query depth 9 exceeds the limit of 6", with
 * `extensions: { code: QUERY_LIMIT_EXCEEDED, limit: 'depth', measured: 9, max: 6 }`. Transports
 * add their own status (HTTP: 400).
 */
export function limitError(limit: LimitName, measured: number, max: number): GraphQLError {
  return new GraphQLError(`${WHAT[limit]} ${measured} exceeds the limit of ${max}`, {
    extensions: { code: QUERY_LIMIT_EXCEEDED, limit, measured, max },
  });
}

/**
 * The tokens of a document as graphql-js's parser counts them (punctuators, names, values; not
 * comments, commas or whitespace), by its lexer alone: no syntax tree is built. Counting stops at
 * a lexical error (the parser reports it).
 */
export function countTokens(query: string): number {
  const lexer = new Lexer(new Source(query));
  let count = 0;
  try {
    while (lexer.advance().kind !== TokenKind.EOF) count++;
  } catch {
    // A lexical error: parse() reports it.
  }
  return count;
}

/** Refuses a document of more tokens than the limit: run before parsing, which it protects. */
export function tokenLimitError(query: string, limits: Limits = LIMITS): GraphQLError | undefined {
  const tokens = countTokens(query);
  return tokens > limits.maxTokens ? limitError('tokens', tokens, limits.maxTokens) : undefined;
}

/** A document's fragment definitions by name. */
export function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  return new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])),
  );
}

/** Introspection fields: left out of depth and cost (introspection is off in production). */
const isIntrospection = (name: string) => name === '__schema' || name === '__type';

/**
 * A connection's edge (Relay): `edges { cursor node { ... } }` holds what `nodes { ... }` holds,
 * each node with its cursor. An edge's `node` is measured as part of its edge, not as a level or
 * an object of its own, so that both forms of a connection have the same depth, and cost the same
 * but for the cursors (limits.test.ts checks that every `edges` field of the schema is a list of
 * such edges).
 */
export const EDGES_FIELD = 'edges';
export const EDGE_NODE_FIELD = 'node';

/** Whether a type is a connection's edge: `*Edge` with a `cursor` and a `node`. */
export function isEdgeType(type: GraphQLNamedType | undefined): boolean {
  if (!type || !isObjectType(type) || !type.name.endsWith('Edge')) return false;
  const fields = type.getFields();
  return 'cursor' in fields && EDGE_NODE_FIELD in fields;
}

/** What an operation's document alone decides. */
export interface Shape {
  /**
   * Nested fields, fragments flattened, introspection left out: `{ a { b } }` is 2. An edge's
   * `node` (in `edges { node { ... } }`) is no level of its own.
   */
  depth: number;
  /** Aliased fields, counted as often as the operation selects them (through every fragment spread). */
  aliases: number;
  /** Directives on the operation, its variables, fields, fragments and spreads, as often as selected. */
  directives: number;
}

/** Measures the shape of an operation, each fragment once however often it is spread. */
export function measureShape(document: DocumentNode, operation: OperationDefinitionNode): Shape {
  const fragments = fragmentsOf(document);
  const measured = new Map<string, Shape>();
  // `inEdges`: the selections are an `edges` field's (an edge's), whose `node` adds no level.
  const walk = (selections: readonly SelectionNode[], inEdges = false): Shape => {
    const shape: Shape = { depth: 0, aliases: 0, directives: 0 };
    const add = (inner: Shape, depth: number) => {
      shape.depth = Math.max(shape.depth, depth);
      shape.aliases += inner.aliases;
      shape.directives += inner.directives;
    };
    for (const selection of selections) {
      shape.directives += selection.directives?.length ?? 0;
      if (selection.kind === Kind.FIELD) {
        if (selection.alias) shape.aliases++;
        const name = selection.name.value;
        const inner = selection.selectionSet
          ? walk(selection.selectionSet.selections, name === EDGES_FIELD)
          : { depth: 0, aliases: 0, directives: 0 };
        const level = inEdges && name === EDGE_NODE_FIELD ? 0 : 1;
        add(inner, isIntrospection(name) ? 0 : level + inner.depth);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const inner = walk(selection.selectionSet.selections, inEdges);
        add(inner, inner.depth);
      } else {
        const name = selection.name.value;
        const key = `${name}\u0000${inEdges}`;
        let inner = measured.get(key);
        if (!inner) {
          const fragment = fragments.get(name);
          // Marked before the walk: a cycle (which validation refuses anyway) ends here.
          measured.set(key, { depth: 0, aliases: 0, directives: 0 });
          inner = fragment ? walk(fragment.selectionSet.selections, inEdges) : { depth: 0, aliases: 0, directives: 0 };
          if (fragment) inner.directives += fragment.directives?.length ?? 0;
          measured.set(key, inner);
        }
        add(inner, inner.depth);
      }
    }
    return shape;
  };
  const shape = walk(operation.selectionSet.selections);
  shape.directives +=
    (operation.directives?.length ?? 0) +
    (operation.variableDefinitions ?? []).reduce((n, v) => n + (v.directives?.length ?? 0), 0);
  return shape;
}

/** Refuses an operation deeper, or with more aliases or directives, than the limits. */
export function shapeLimitError(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  limits: Limits = LIMITS,
): GraphQLError | undefined {
  const { depth, aliases, directives } = measureShape(document, operation);
  if (depth > limits.maxDepth) return limitError('depth', depth, limits.maxDepth);
  if (aliases > limits.maxAliases) return limitError('aliases', aliases, limits.maxAliases);
  if (directives > limits.maxDirectives) return limitError('directives', directives, limits.maxDirectives);
  return undefined;
}

/** The arguments that set a page size. */
const PAGE_ARGUMENTS = ['first', 'last'];

/**
 * Page size of a list when neither the argument nor its description gives one (no field of the
 * schema is so: every page argument documents "Page size, 1 to N. Defaults to D.", see limits.test.ts).
 */
export const ASSUMED_PAGE_SIZE = 100;

/** A paged field's page arguments and the bounds its schema documents. */
export interface PageBounds {
  arguments: string[];
  /** The largest page the field serves ("1 to N" in the argument's description). */
  max?: number;
  /** The page it serves without a page argument ("Defaults to D."), or the argument's default value. */
  default?: number;
}

const numberIn = (text: string | null | undefined, pattern: RegExp): number | undefined => {
  const match = text ? pattern.exec(text) : null;
  return match ? Number(match[1]!.replaceAll(',', '')) : undefined;
};

const boundsOf = new WeakMap<GraphQLField<unknown, unknown>, PageBounds | null>();

/**
 * The page bounds of a field with a `first` or `last` argument, as its schema documents them:
 * "Page size, 1 to 1000. Defaults to 50." (the subgraphs refuse more than the max with BAD_USER_INPUT).
 */
export function pageBounds(field: GraphQLField<unknown, unknown>): PageBounds | undefined {
  let bounds = boundsOf.get(field);
  if (bounds === undefined) {
    const args = field.args.filter((a) => PAGE_ARGUMENTS.includes(a.name));
    bounds = null;
    if (args.length > 0) {
      bounds = { arguments: args.map((a) => a.name) };
      for (const arg of args) {
        bounds.max ??= numberIn(arg.description, /\b1 to (\d[\d,]*)/);
        bounds.default ??=
          typeof arg.defaultValue === 'number' ? arg.defaultValue : numberIn(arg.description, /Defaults to (\d[\d,]*)/);
      }
    }
    boundsOf.set(field, bounds);
  }
  return bounds ?? undefined;
}

/** Every paged field of a schema, by `Type.field`, with its documented bounds. */
export function pagedFields(schema: GraphQLSchema): Map<string, PageBounds> {
  const paged = new Map<string, PageBounds>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || !(isObjectType(type) || isInterfaceType(type))) continue;
    for (const field of Object.values(type.getFields())) {
      const bounds = pageBounds(field);
      if (bounds) paged.set(`${type.name}.${field.name}`, bounds);
    }
  }
  return paged;
}

/** A page argument outside the bounds its field documents. */
export interface PageSizeProblem {
  /** `Type.field` */
  field: string;
  argument: string;
  value: number;
  max: number;
}

/**
 * The page a paged field returns at most for these argument values: the largest page argument,
 * else the documented default; at least 1 and at most the documented max. A value outside 1 to max
 * is reported (the operation is refused for it, with BAD_USER_INPUT, before its cost is judged).
 */
function pageSize(
  bounds: PageBounds,
  field: GraphQLField<unknown, unknown>,
  node: FieldNode,
  variables: Record<string, unknown>,
  report: (argument: string, value: number, max: number) => void,
): number {
  let args: Record<string, unknown> = {};
  try {
    args = getArgumentValues(field, node, variables);
  } catch {
    // Invalid arguments: execution refuses them; the default page stands in.
  }
  const given: number[] = [];
  for (const name of bounds.arguments) {
    const value = args[name];
    if (typeof value !== 'number') continue;
    given.push(value);
    if (bounds.max !== undefined && (value < 1 || value > bounds.max)) report(name, value, bounds.max);
  }
  const size = given.length > 0 ? Math.max(...given) : (bounds.default ?? bounds.max ?? ASSUMED_PAGE_SIZE);
  return Math.max(1, bounds.max === undefined ? size : Math.min(size, bounds.max));
}

/**
 * What a list field without a page argument holds at most, and how its elements are counted:
 *
 * - `records`: separate records (or catalogue rows) that its service reads and returns, up to
 *   `max`: the cost counts `max` elements. `ClusterProfile.versions` of `versions` of `versions`
 *   is 500 × 500 × 500 profiles, not 1 × 1 × 1.
 * - `part`: part of its parent object's own record (a profile's layers, a cluster's pools, one
 *   agent report's nodes): the cost counts one element, as the record it is part of is counted.
 *   Its size is bounded by that record (a stored document, a NATS message of at most 1 MB), and
 *   its elements lead to no record and no list of records (limits.test.ts checks it), so nesting
 *   cannot multiply record reads through it.
 *
 * `max` is the owning service's own bound, where its code sets it (`where`). Every list field of
 * the API schema has a page argument, is a connection's page, or is here: limits.test.ts fails on
 * one that is none of these.
 */
export interface ListBound {
  kind: 'records' | 'part';
  /** The most elements the owning service returns for one parent object. */
  max: number;
  /** Where the bound comes from. */
  where: string;
}

const records = (max: number, where: string): ListBound => ({ kind: 'records', max, where });
const part = (max: number, where: string): ListBound => ({ kind: 'part', max, where });
/** A request body is at most 1 MB (gateway.ts BODY_LIMIT): a mutation's problems are as many as its input holds. */
const USER_ERRORS = part(
  Number.POSITIVE_INFINITY,
  'one per problem of the mutation input, so bounded by the input (a body of at most 1 MB)',
);

/** The bounds of the list fields without a page argument, by `Type.field` (see ListBound). */
export const LIST_BOUNDS: Readonly<Record<string, ListBound>> = {
  // Records.
  'ClusterProfile.versions': records(500, 'MAX_VERSIONS_PER_NAME, services/profiles/src/adapters/profile.repo.ts'),
  'Cluster.availableUpdates': records(
    500,
    "the versions of its profile's name newer than its own: MAX_VERSIONS_PER_NAME (services/profiles/src/adapters/profile.repo.ts), via clusters' cluster.resolver.ts",
  ),
  'Cluster.images': records(500, 'usesOfCluster reads `first: 500`, services/images/src/adapters/image.repo.ts'),
  'Cluster.logBundles': records(100, 'MAX_BUNDLES_PER_CLUSTER, services/logs/src/adapters/bundle.repo.ts'),
  'Query.images': records(2000, 'MAX_LIST, services/images/src/adapters/image.repo.ts (pages of 500 until 2,000)'),
  'Query.webhooks': records(
    20,
    'MAX_WEBHOOKS_PER_PROJECT, services/clusters/src/webhooks/webhook.resolver.ts (checked at creation)',
  ),
  'Query.apiKeys': records(200, 'API_KEY_LIMITS.listed, services/profiles/src/apikeys/apikey.ts'),
  'Query.regions': records(100, "not capped in code: the cloud's own list (AWS about 35 regions, Azure about 65)"),
  'Query.instanceTypes': records(
    1000,
    "not capped in code: the cloud's own list for a region (AWS and Azure offer some 500 to 900)",
  ),
  'Query.proxyRequirements': records(
    100,
    'services/clusters/src/domain/proxy.ts: 7 at most, plus one per configured AWS region and registry',
  ),
  // Parts of their parent's record.
  'ClusterProfile.layers': part(34, 'LIMITS.layers, services/profiles/src/domain/profile.ts'),
  'PackLayer.ansibleRoles': part(50, 'LIMITS.ansibleRoles, services/profiles/src/domain/profile.ts'),
  'Cluster.nodePools': part(20, 'LIMITS.pools, services/clusters/src/domain/cluster.ts'),
  'NodePool.availabilityZones': part(
    12,
    'zones of its region, each once (validatePool), at most MAX_ZONES, services/clouds/src/network-plan.ts',
  ),
  'Cluster.conditions': part(6, 'one per Milestone, services/clusters/src/domain/conditions.ts'),
  'ConditionsUpdate.conditions': part(6, 'one per Milestone, services/clusters/src/domain/conditions.ts'),
  'Webhook.events': part(
    5,
    'subscribableEventTypes, each once, services/clusters/src/webhooks/events.ts and webhook.resolver.ts',
  ),
  'Cluster.nodes': part(2000, 'MAX_REPORTED_NODES of one agent report, schema/src/contracts/agent-reports.ts'),
  'ClusterNode.conditions': part(64, 'reportedNodeSchema conditions .max(64), schema/src/contracts/agent-reports.ts'),
  'Cluster.services': part(1000, 'agentReportSchema services .max(1_000), schema/src/contracts/agent-reports.ts'),
  'ApplicationService.urls': part(64, 'reportedServiceSchema urls .max(64), schema/src/contracts/agent-reports.ts'),
  'ClusterHealth.reasons': part(
    2000 * 65 + 3,
    'one per failing check (services/health/src/domain/health.ts findingsOf): per node its conditions and disk, then CPU, memory, heartbeat',
  ),
  'ClusterUsage.series': part(500, 'maxSeriesPoints, services/health/src/ingest/ingest.ts'),
  'Region.zones': part(12, "not capped in code: the cloud's zones of a region (AWS at most 6, Azure 3)"),
  'Image.ansibleRoles': part(50, 'LIMITS.ansibleRoles, services/images/src/domain/plan.ts'),
  'Image.log': part(200, 'LOG_LINES, services/images/src/domain/image.ts'),
  'UserError.field': part(4, 'the longest input path, e.g. ["input", "layers", "0", "values"]'),
  'CreateWebhookPayload.userErrors': USER_ERRORS,
  'WebhookPayload.userErrors': USER_ERRORS,
  'RotateWebhookSecretPayload.userErrors': USER_ERRORS,
  'ClusterPayload.userErrors': USER_ERRORS,
  'LogBundlePayload.userErrors': USER_ERRORS,
  'CreateApiKeyPayload.userErrors': USER_ERRORS,
  'ApiKeyPayload.userErrors': USER_ERRORS,
  'ClusterProfilePayload.userErrors': USER_ERRORS,
};

/** The elements the cost counts for an unpaged list field (see ListBound), or undefined when it has no bound. */
export function listElements(typeName: string, fieldName: string): number | undefined {
  const bound = LIST_BOUNDS[`${typeName}.${fieldName}`];
  return bound && (bound.kind === 'records' ? bound.max : 1);
}

function fieldOf(type: GraphQLNamedType | undefined, name: string): GraphQLField<unknown, unknown> | undefined {
  return type && (isObjectType(type) || isInterfaceType(type)) ? type.getFields()[name] : undefined;
}

/**
 * The cost of an operation: how many values (objects and leaves) its response can hold at most.
 * Every selected field counts 1 for each object it is selected on. A list counts its elements:
 * a list field with a page argument (`first`, `last`) as many as its page, and so do the list
 * fields of a paged field that is not itself a list (a connection's `nodes` or `edges`: the page
 * of `clusters(first: 100)`); a list without a page as LIST_BOUNDS says: a list of records as many
 * as its service returns at most, a part of its parent's record as one element. An edge's `node` is
 * part of its edge, not an object of its own (`edges { cursor node { id } }` costs as
 * `nodes { id }`, plus the cursors). The page is the
 * argument's value (literal, variable, or default), capped to the documented max (see pageSize).
 * Introspection costs nothing. `variables` are the operation's coerced values.
 */
export function measureCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): number {
  return measure(schema, document, operation, variables).cost;
}

/** The cost of an operation (measureCost), and the first page argument outside its bounds, if any. */
function measure(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): { cost: number; page?: PageSizeProblem } {
  let outOfBounds: PageSizeProblem | undefined;
  const fragments = fragmentsOf(document);
  /** Cost of a fragment's selections, by name and the page its list fields inherit. */
  const measured = new Map<string, number>();
  // The cost of a selection set for one object of `type`; `page`: how many elements its unpaged list fields hold.
  const cost = (selections: readonly SelectionNode[], type: GraphQLNamedType | undefined, page: number): number => {
    let total = 0;
    for (const selection of selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        if (isIntrospection(name)) continue;
        const field = fieldOf(type, name);
        // __typename, or a field validation refused.
        if (!field) {
          total += 1;
          continue;
        }
        const bounds = pageBounds(field);
        const size = bounds
          ? pageSize(bounds, field, selection, variables, (argument, value, max) => {
              outOfBounds ??= { field: `${type!.name}.${name}`, argument, value, max };
            })
          : undefined;
        const list = isListType(getNullableType(field.type));
        // A page, else the list's bound (LIST_BOUNDS), else a connection's page (1 outside one).
        const elements = list ? (size ?? listElements(type!.name, name) ?? page) : 1;
        const inherited = size !== undefined && !list ? size : 1;
        const inner = selection.selectionSet
          ? cost(selection.selectionSet.selections, getNamedType(field.type), inherited)
          : 0;
        const self = name === EDGE_NODE_FIELD && isEdgeType(type) ? 0 : 1;
        total += elements * (self + inner);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : type;
        total += cost(selection.selectionSet.selections, on, page);
      } else {
        const key = `${selection.name.value}\u0000${page}`;
        let inner = measured.get(key);
        if (inner === undefined) {
          const fragment = fragments.get(selection.name.value);
          // Marked before the walk: a cycle (which validation refuses anyway) ends here.
          measured.set(key, 0);
          inner = fragment
            ? cost(fragment.selectionSet.selections, schema.getType(fragment.typeCondition.name.value), page)
            : 0;
          measured.set(key, inner);
        }
        total += inner;
      }
    }
    return total;
  };
  const total = cost(operation.selectionSet.selections, schema.getRootType(operation.operation) ?? undefined, 1);
  return { cost: total, ...(outOfBounds ? { page: outOfBounds } : {}) };
}

/**
 * The error of a page argument outside its bounds, e.g. "first must be between 1 and 100 on
 * Query.clusters (got 101)", with `extensions: { code: BAD_USER_INPUT, field, argument, value, max }`.
 */
export function pageSizeError(problem: PageSizeProblem): GraphQLError {
  const { field, argument, value, max } = problem;
  return new GraphQLError(`${argument} must be between 1 and ${max} on ${field} (got ${value})`, {
    extensions: { code: BAD_USER_INPUT, field, argument, value, max },
  });
}

/**
 * Refuses an operation, for its coerced variable values, that asks for a page outside the bounds
 * its field documents (BAD_USER_INPUT: the page-size check comes first, so that a page too large
 * is not told as a cost), or whose cost is over the limit (QUERY_LIMIT_EXCEEDED).
 */
export function costLimitError(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
  limits: Limits = LIMITS,
): GraphQLError | undefined {
  const { cost, page } = measure(schema, document, operation, variables);
  if (page) return pageSizeError(page);
  return cost > limits.maxCost ? limitError('cost', cost, limits.maxCost) : undefined;
}

/**
 * Refuses an operation over the depth, alias, directive or cost limit (the first it exceeds, in
 * that order; a page size outside its bounds before the cost), with its variables as sent.
 * Variables that do not coerce leave the cost unmeasured: the operation is refused for them before
 * anything runs (BAD_USER_INPUT).
 */
export function operationLimitError(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | null | undefined,
  limits: Limits = LIMITS,
): GraphQLError | undefined {
  const shape = shapeLimitError(document, operation, limits);
  if (shape) return shape;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {}, { maxErrors: 1 });
  return coerced.coerced ? costLimitError(schema, document, operation, coerced.coerced, limits) : undefined;
}
