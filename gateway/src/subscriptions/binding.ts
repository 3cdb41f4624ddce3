import { assertToken, STREAM_DIRECTIVE, STREAM_SPEC_URL, StreamReplay } from '@fleetgraph/kit/core';
import { parseCondition, type Condition } from './condition.js';
import {
  getNamedType,
  isEnumType,
  isNonNullType,
  isObjectType,
  Kind,
  parse,
  validate,
  valueFromASTUntyped,
  visit,
  type DocumentNode,
  type GraphQLField,
  type GraphQLSchema,
} from './graphql.js';

/** One token of a subject template. */
type SubjectPart =
  | { kind: 'static'; value: string }
  | { kind: 'any' }
  | { kind: 'tenant' }
  | { kind: 'argument'; name: string; nullable: boolean };

/** A Subscription field bound by `@jetstream`, checked against the API schema and ready to serve. */
export interface FieldBinding {
  /** The Subscription field. */
  field: string;
  /** JetStream stream holding the subject. */
  stream: string;
  /** The subject template as declared, for messages. */
  subjectTemplate: string;
  subject: readonly SubjectPart[];
  /** The subject with `*` for each placeholder: every subject the field can consume. */
  pattern: string;
  /** The authorisation query, its variables (a subset of the field's arguments), and the response key to check. */
  authorize?: {
    query: string;
    variables: readonly string[];
    responseKey: string;
    entity: string;
    /** The question asked, whatever the field asking it: its variables' types and its selection. */
    question: string;
  };
  /**
   * The payload field naming each event's project: an event reaches only subscribers who may read
   * that project; the field's argument of that name, if any and given, must name a project the
   * caller may read.
   */
  project?: string;
  /** Whether the subject can match many subjects (a `*`, or a nullable argument): read with a wildcard. */
  wildcard: boolean;
  replay: StreamReplay;
  /** When set, the subscription ends after an event for which it holds. */
  complete?: Condition;
  /** Whether the payload type has a `cursor` field, which the gateway fills with the event's cursor. */
  cursorField: boolean;
}

/** A supergraph whose `@jetstream` bindings cannot be served: every problem, one per line. */
export class StreamBindingError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid @${STREAM_DIRECTIVE} bindings in the supergraph:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'StreamBindingError';
  }
}

const STATIC_TOKEN = /^[A-Za-z0-9_-]+$/;
const PLACEHOLDER = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
/** The argument that carries a CURSOR subscription's resume position. */
export const AFTER_ARGUMENT = 'after';

/** The directive's local name in the supergraph: as imported from the spec's `@link`, `@jetstream` by default. */
function directiveName(document: DocumentNode): string | undefined {
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const link of definition.directives ?? []) {
      if (link.name.value !== 'link') continue;
      const args = Object.fromEntries((link.arguments ?? []).map((a) => [a.name.value, valueFromASTUntyped(a.value)]));
      if (typeof args.url !== 'string' || !args.url.startsWith(STREAM_SPEC_URL.replace(/v[\d.]+$/, ''))) continue;
      for (const entry of (args.import as unknown[] | undefined) ?? []) {
        if (entry === `@${STREAM_DIRECTIVE}`) return STREAM_DIRECTIVE;
        if (typeof entry === 'object' && entry && (entry as { name?: unknown }).name === `@${STREAM_DIRECTIVE}`) {
          const as = (entry as { as?: unknown }).as;
          return typeof as === 'string' ? as.replace(/^@/, '') : STREAM_DIRECTIVE;
        }
      }
      return typeof args.as === 'string' ? args.as : STREAM_DIRECTIVE;
    }
  }
  return undefined;
}

function subscriptionTypeName(document: DocumentNode): string {
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    const named = definition.operationTypes?.find((o) => o.operation === 'subscription');
    if (named) return named.type.name.value;
  }
  return 'Subscription';
}

/** The raw `@jetstream` arguments of each Subscription field that carries the directive. */
function readDirectives(supergraphSdl: string): Map<string, Record<string, unknown>> {
  const document = parse(supergraphSdl);
  const found = new Map<string, Record<string, unknown>>();
  const name = directiveName(document);
  if (!name) return found;
  const typeName = subscriptionTypeName(document);
  for (const definition of document.definitions) {
    if (
      (definition.kind !== Kind.OBJECT_TYPE_DEFINITION && definition.kind !== Kind.OBJECT_TYPE_EXTENSION) ||
      definition.name.value !== typeName
    )
      continue;
    for (const field of definition.fields ?? []) {
      const directive = field.directives?.find((d) => d.name.value === name);
      if (!directive) continue;
      found.set(
        field.name.value,
        Object.fromEntries((directive.arguments ?? []).map((a) => [a.name.value, valueFromASTUntyped(a.value)])),
      );
    }
  }
  return found;
}

function compileSubject(field: GraphQLField<unknown, unknown>, template: unknown, problems: string[]): SubjectPart[] {
  const where = `Subscription.${field.name}`;
  if (typeof template !== 'string' || template === '') {
    problems.push(`${where}: subject must be a non-empty string`);
    return [];
  }
  const parts: SubjectPart[] = [];
  for (const token of template.split('.')) {
    const placeholder = PLACEHOLDER.exec(token)?.[1];
    if (placeholder === 'tenantId') {
      if (field.args.some((a) => a.name === 'tenantId'))
        problems.push(`${where}: an argument may not be called tenantId: the tenant comes from the caller's identity`);
      parts.push({ kind: 'tenant' });
    } else if (placeholder) {
      const arg = field.args.find((a) => a.name === placeholder);
      const type = arg && getNamedType(arg.type).name;
      if (!arg) problems.push(`${where}: subject placeholder {${placeholder}} names no argument of the field`);
      else if (placeholder === AFTER_ARGUMENT)
        problems.push(`${where}: {after} is the resume cursor and cannot be part of the subject`);
      else if (type !== 'ID' && type !== 'String' && !isEnumType(getNamedType(arg.type))) {
        problems.push(
          `${where}: subject placeholder {${placeholder}} must be an ID, String or enum argument, not ${type}`,
        );
      }
      // Left out, a nullable argument without a default matches any; one with a default is that default.
      const nullable = arg !== undefined && !isNonNullType(arg.type) && arg.defaultValue === undefined;
      parts.push({ kind: 'argument', name: placeholder, nullable });
    } else if (token === '*') {
      parts.push({ kind: 'any' });
    } else if (STATIC_TOKEN.test(token)) {
      parts.push({ kind: 'static', value: token });
    } else {
      problems.push(`${where}: subject token "${token}" is neither a plain token, a {placeholder} nor *`);
    }
  }
  if (!parts.some((p) => p.kind === 'tenant'))
    problems.push(`${where}: subject must contain {tenantId}, so that no event crosses tenants`);
  return parts;
}

function compileAuthorize(
  schema: GraphQLSchema,
  field: GraphQLField<unknown, unknown>,
  selection: unknown,
  problems: string[],
): FieldBinding['authorize'] {
  const where = `Subscription.${field.name}`;
  if (typeof selection !== 'string' || selection.trim() === '') {
    problems.push(`${where}: authorize must be a query selection such as "cluster(id: $clusterId) { id }"`);
    return undefined;
  }
  let document: DocumentNode;
  try {
    document = parse(`{ ${selection} }`);
  } catch (error) {
    problems.push(`${where}: authorize does not parse: ${(error as Error).message}`);
    return undefined;
  }
  const operation = document.definitions[0];
  const roots = operation?.kind === Kind.OPERATION_DEFINITION ? operation.selectionSet.selections : [];
  const root = roots[0];
  if (document.definitions.length !== 1 || roots.length !== 1 || root?.kind !== Kind.FIELD) {
    problems.push(`${where}: authorize must select exactly one query field`);
    return undefined;
  }
  const variables = new Set<string>();
  visit(document, { Variable: (node) => void variables.add(node.name.value) });
  const definitions: string[] = [];
  for (const name of variables) {
    const arg = field.args.find((a) => a.name === name);
    if (!arg) problems.push(`${where}: authorize uses $${name}, which is no argument of the field`);
    else definitions.push(`$${name}: ${String(arg.type)}`);
  }
  const variableList = definitions.length ? `(${definitions.join(', ')})` : '';
  const query = `query Authorize_${field.name}${variableList} { ${selection} }`;
  for (const error of validate(schema, parse(query)))
    problems.push(`${where}: authorize is not a valid query: ${error.message}`);
  return {
    query,
    variables: [...variables],
    responseKey: root.alias?.value ?? root.name.value,
    entity: root.name.value,
    question: `${variableList} { ${selection} }`,
  };
}

/**
 * Reads every Subscription field bound by `@jetstream` from the supergraph and checks each one
 * against the API schema. @throws StreamBindingError listing every problem
 */
export function readBindings(supergraphSdl: string, apiSchema: GraphQLSchema): Map<string, FieldBinding> {
  const problems: string[] = [];
  const bindings = new Map<string, FieldBinding>();
  const fields = apiSchema.getSubscriptionType()?.getFields() ?? {};
  for (const [name, args] of readDirectives(supergraphSdl)) {
    const field = fields[name];
    // An @inaccessible field is not in the API schema: nobody can subscribe to it.
    if (!field) continue;
    const where = `Subscription.${name}`;
    const replay = (args.replay ?? StreamReplay.NONE) as StreamReplay;
    if (!(replay in StreamReplay))
      problems.push(`${where}: replay must be one of ${Object.keys(StreamReplay).join(', ')}`);
    if (typeof args.stream !== 'string' || !STATIC_TOKEN.test(args.stream))
      problems.push(`${where}: stream must name a JetStream stream`);
    if (replay === StreamReplay.CURSOR) {
      const after = field.args.find((a) => a.name === AFTER_ARGUMENT);
      if (!after || getNamedType(after.type).name !== 'String')
        problems.push(`${where}: replay CURSOR needs an argument after: String`);
    }
    let complete: Condition | undefined;
    if (args.complete != null) {
      try {
        complete = parseCondition(String(args.complete));
      } catch (error) {
        problems.push(`${where}: complete "${String(args.complete)}": ${(error as Error).message}`);
      }
    }
    const returned = getNamedType(field.type);
    const subject = compileSubject(field, args.subject, problems);
    const wildcard = subject.some((part) => part.kind === 'any' || (part.kind === 'argument' && part.nullable));
    const project = args.project == null ? undefined : String(args.project);
    if (project !== undefined && !(isObjectType(returned) && project in returned.getFields()))
      problems.push(`${where}: project "${project}" is no field of ${returned.name}`);
    if (wildcard && project === undefined)
      problems.push(`${where}: a subject that matches many (a * or a nullable argument) needs project`);
    if (args.authorize == null && project === undefined)
      problems.push(`${where}: authorize (a query) or project is needed, so that a caller sees only what it may`);
    bindings.set(name, {
      field: name,
      stream: String(args.stream),
      subjectTemplate: String(args.subject),
      subject,
      pattern: subject.map((part) => (part.kind === 'static' ? part.value : '*')).join('.'),
      authorize: args.authorize == null ? undefined : compileAuthorize(apiSchema, field, args.authorize, problems),
      project,
      wildcard,
      replay,
      complete,
      cursorField: isObjectType(returned) && 'cursor' in returned.getFields(),
    });
  }
  if (problems.length > 0) throw new StreamBindingError(problems);
  return bindings;
}

/**
 * The subject a subscription consumes: `{tenantId}` from the verified identity, every other
 * placeholder from the field's arguments (`*` for a nullable one not given).
 * @throws TypeError when an argument is not a plain id
 */
export function subjectFor(binding: FieldBinding, tenantId: string, args: Record<string, unknown>): string {
  return binding.subject
    .map((part) => {
      if (part.kind === 'static') return part.value;
      if (part.kind === 'any') return '*';
      if (part.kind === 'tenant') return assertToken('tenantId', tenantId);
      if (part.nullable && args[part.name] == null) return '*';
      try {
        return assertToken(part.name, args[part.name]);
      } catch {
        throw new TypeError(`${part.name} must be a plain id: letters, digits, "-" and "_"`);
      }
    })
    .join('.');
}
