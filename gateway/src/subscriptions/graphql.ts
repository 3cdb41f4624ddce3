/**
 * The graphql functions the subscription engine uses, from the one module instance that
 * @apollo/gateway, graphql-ws and every other dependency load: graphql's CommonJS build.
 *
 * A bare `graphql` import from TypeScript sources is resolved by vitest to graphql's ESM build
 * (its package.json `module` field), a second instance whose schemas, documents and errors fail
 * graphql's cross-realm `instanceof` checks against the gateway's API schema (and graphql-ws's
 * `instanceof GraphQLError`). Node resolves `graphql/index.js` and `graphql` to the same file, so
 * the built gateway is unaffected either way.
 */
export {
  executeSync,
  getArgumentValues,
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  isEnumType,
  isNonNullType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  Lexer,
  parse,
  print,
  Source,
  TokenKind,
  validate,
  valueFromASTUntyped,
  visit,
} from 'graphql/index.js';
export type {
  DocumentNode,
  FieldNode,
  FragmentDefinitionNode,
  GraphQLField,
  GraphQLNamedType,
  GraphQLSchema,
  NameNode,
  OperationDefinitionNode,
  SelectionNode,
  SelectionSetNode,
  ValueNode,
  VariableDefinitionNode,
} from 'graphql/index.js';
