import { createHash } from 'node:crypto';
import type { SubscribePayload } from 'graphql-ws';
import { LRUCache } from 'lru-cache';
import { costLimitError, fragmentsOf, shapeLimitError, tokenLimitError } from '../limits.js';
import type { FieldBinding } from './binding.js';
import { codedError } from './errors.js';
import {
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  Kind,
  parse,
  validate,
  visit,
  type DocumentNode,
  type FieldNode,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
} from './graphql.js';

/**
 * What preparing a subscription derives from its document alone: the same for every subscription
 * that sends the same text and operation name, so computed once (parsing and validating are most
 * of the work of a subscribe) and one document shared instead of a copy per subscription.
 */
export interface Compiled {
  document: DocumentNode;
  field: FieldNode;
  name: string;
  binding: FieldBinding;
  definition: GraphQLField<unknown, unknown>;
  operation: OperationDefinitionNode;
  /** The variables the selection uses: with the tenant and the text, what decides an execution's result. */
  selectionVariables: string[];
  /** The text and operation name as a short key (a hash of them): subscribers' executions are shared by it. */
  documentKey: string;
}

/**
 * The subscription documents of one API schema, checked as POST /graphql checks queries: the
 * query limits of `../limits.ts` (tokens before parsing; depth, aliases and directives after
 * validation; the cost once the variables are known), with the same codes and in the same order.
 */
export interface Compiler {
  /**
   * Parses and validates a subscription document and measures its shape against the query limits,
   * or takes it from the documents compiled already (which are within the limits): errors for a
   * document that cannot be served, a query or mutation included.
   */
  compile(payload: SubscribePayload): Compiled | readonly GraphQLError[];
  /**
   * The root field's arguments, from the payload's variables coerced, once the operation's cost with
   * those variables is within the limit: errors (BAD_USER_INPUT, QUERY_LIMIT_EXCEEDED) otherwise.
   */
  argumentsOf(compiled: Compiled, payload: SubscribePayload): Record<string, unknown> | readonly GraphQLError[];
}

/** Documents kept compiled per schema. */
const COMPILED_DOCUMENTS = 500;
/** Longer documents are compiled for each subscription and not kept. */
const COMPILED_MAX_LENGTH = 16 * 1024;

/** The single root field of a subscription operation, through fragments if need be. */
function rootField(operation: OperationDefinitionNode, document: DocumentNode): FieldNode | undefined {
  const fragments = fragmentsOf(document);
  const stack = [...operation.selectionSet.selections];
  while (stack.length > 0) {
    const selection = stack.shift()!;
    if (selection.kind === Kind.FIELD) return selection;
    if (selection.kind === Kind.INLINE_FRAGMENT) stack.unshift(...selection.selectionSet.selections);
    else stack.unshift(...(fragments.get(selection.name.value)?.selectionSet.selections ?? []));
  }
  return undefined;
}

/**
 * Refuses `@skip`/`@include` on the way to a subscription's root field, as the GraphQL
 * specification does since 2021 (graphql-js 16 throws on some such documents instead of
 * reporting them): whether a subscription watches anything cannot depend on a variable.
 */
function conditionalRoot(document: DocumentNode): GraphQLError | undefined {
  const fragments = fragmentsOf(document);
  const seen = new Set<string>();
  const check = (selections: readonly SelectionNode[]): GraphQLError | undefined => {
    for (const selection of selections) {
      const directive = selection.directives?.find((d) => d.name.value === 'skip' || d.name.value === 'include');
      if (directive)
        return new GraphQLError(`a subscription's root selection cannot carry @${directive.name.value}`, {
          nodes: [directive],
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        });
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const found = check(selection.selectionSet.selections);
        if (found) return found;
      } else if (selection.kind === Kind.FRAGMENT_SPREAD && !seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const found = check(fragments.get(selection.name.value)?.selectionSet.selections ?? []);
        if (found) return found;
      }
    }
    return undefined;
  };
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION || definition.operation !== 'subscription') continue;
    const found = check(definition.selectionSet.selections);
    if (found) return found;
  }
  return undefined;
}

/**
 * Variables whose values can change the result of executing the operation over an event: every
 * one the operation uses (through its fragments too, and in the directives on the way to the
 * root field) but the root field's own arguments, which pick the subject, not the result.
 */
function selectionVariables(operation: OperationDefinitionNode, field: FieldNode, document: DocumentNode): string[] {
  const fragments = fragmentsOf(document);
  const names = new Set<string>();
  const seen = new Set<string>();
  const walk = (node: Parameters<typeof visit>[0]) =>
    visit(node, {
      Variable: (v) => void names.add(v.name.value),
      Field: (node) => {
        if (node !== field) return undefined;
        // The root field: its selection and directives, not its arguments.
        if (node.selectionSet) walk(node.selectionSet);
        for (const directive of node.directives ?? []) walk(directive);
        return false;
      },
      FragmentSpread: (spread) => {
        const fragment = fragments.get(spread.name.value);
        if (fragment && !seen.has(fragment.name.value)) {
          seen.add(fragment.name.value);
          walk(fragment);
        }
      },
    });
  walk(operation.selectionSet);
  for (const directive of operation.directives ?? []) walk(directive);
  return [...names].sort();
}

/** The compiler of the Subscription fields `bindings` serves in `schema`, with an LRU of compiled documents. */
export function createCompiler(schema: GraphQLSchema, bindings: ReadonlyMap<string, FieldBinding>): Compiler {
  const compiled = new LRUCache<string, Compiled>({ max: COMPILED_DOCUMENTS });

  return {
    compile(payload) {
      // No operation name (null or absent) is "\u0001", which no GraphQL name can be.
      const key = `${payload.operationName ?? '\u0001'}\u0000${payload.query}`;
      const cached = compiled.get(key);
      if (cached) return cached;
      const tooLong = tokenLimitError(payload.query);
      if (tooLong) return [tooLong];
      let document: DocumentNode;
      try {
        document = parse(payload.query);
      } catch (syntaxError) {
        // As Apollo answers it on POST /graphql.
        const { message, source, positions } = syntaxError as GraphQLError;
        return [new GraphQLError(message, { source, positions, extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
      }
      const conditional = conditionalRoot(document);
      if (conditional) return [conditional];
      let invalid: readonly GraphQLError[];
      try {
        invalid = validate(schema, document);
      } catch (failure) {
        // graphql-js's rules can throw on documents they do not expect (it is a bad document, not our fault).
        if (!(failure instanceof GraphQLError)) throw failure;
        invalid = [failure];
      }
      if (invalid.length > 0)
        return invalid.map(
          (e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }),
        );
      const operation = getOperationAST(document, payload.operationName);
      if (!operation)
        return [codedError('GRAPHQL_VALIDATION_FAILED', 'the document does not name one operation to run')];
      const overLimit = shapeLimitError(document, operation);
      if (overLimit) return [overLimit];
      if (operation.operation !== 'subscription') {
        // Over the cost limit, a query is refused for that here as well (the limits are the same everywhere).
        const variables = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {}, {
          maxErrors: 1,
        });
        const tooCostly = variables.coerced && costLimitError(schema, document, operation, variables.coerced);
        return [
          tooCostly ||
            codedError(
              'BAD_USER_INPUT',
              'only subscriptions are served here: send queries and mutations with POST /graphql',
            ),
        ];
      }
      const field = rootField(operation, document)!;
      const name = field.name.value;
      const binding = bindings.get(name);
      const definition = schema.getSubscriptionType()?.getFields()[name];
      if (!binding || !definition) return [codedError('BAD_USER_INPUT', `Subscription.${name} is not served`)];
      const result: Compiled = {
        document,
        field,
        name,
        binding,
        definition,
        operation,
        selectionVariables: selectionVariables(operation, field, document),
        documentKey: createHash('sha256').update(key).digest('base64url'),
      };
      if (payload.query.length <= COMPILED_MAX_LENGTH) compiled.set(key, result);
      return result;
    },

    argumentsOf({ document, operation, definition, field }, payload) {
      const variables = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {});
      if (variables.errors)
        return variables.errors.map(
          (e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'BAD_USER_INPUT' } }),
        );
      const tooCostly = costLimitError(schema, document, operation, variables.coerced);
      if (tooCostly) return [tooCostly];
      try {
        return getArgumentValues(definition, field, variables.coerced);
      } catch (argumentError) {
        return [new GraphQLError((argumentError as Error).message, { extensions: { code: 'BAD_USER_INPUT' } })];
      }
    },
  };
}
