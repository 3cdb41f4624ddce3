import 'reflect-metadata';
import { buildSubgraphSchema, printSubgraphSchema } from '@apollo/subgraph';
import { printSchemaWithDirectives } from '@graphql-tools/utils';
import { Kind, parse, print, visit, type ConstDirectiveNode, type GraphQLSchema } from 'graphql';
import { gql } from 'graphql-tag';
import { buildSchema, createResolversMap, type ClassType, type ContainerType, type NonEmptyArray } from 'type-graphql';
import { DateTimeScalar, JSONScalar } from './scalars.js';
import { gatewayExecutedPubSub, streamTypeDefsFor } from './subscription-binding.js';

/** Federation 2 directives every subgraph may use. */
const FEDERATION_LINK =
  'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", ' +
  'import: ["@key", "@shareable", "@external", "@requires", "@provides", "@inaccessible", "@composeDirective"])';

// Resolver maps are plain objects of objects: two levels deep is all a merge needs here.
type ResolverMap = Record<string, Record<string, unknown>>;

export interface SubgraphOptions {
  resolvers: NonEmptyArray<ClassType>;
  /** Types not reachable from the resolvers that the subgraph still declares (entity stubs). */
  orphanedTypes?: ClassType[];
  /** `__resolveReference` (and other non-class resolvers) per type name. */
  references?: ResolverMap;
  /** Where type-graphql gets resolver instances; omit when only printing the schema. */
  container?: ContainerType;
  /** SDL prepended after the federation link, e.g. custom directive definitions. */
  extraTypeDefs?: string;
  /**
   * Interfaces this subgraph declares entities, `@key(fields: "id")` (Federation 2.3 entity
   * interfaces): it must then declare every type that implements them in the supergraph.
   */
  entityInterfaces?: string[];
}

/**
 * Builds an Apollo Federation 2 subgraph from type-graphql resolvers: the type-graphql schema is
 * printed with its directives, the federation link is prepended, and `buildSubgraphSchema` adds
 * `_entities` and `_service`, wired to type-graphql's resolvers and the reference resolvers.
 */
export async function buildSubgraph(options: SubgraphOptions): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers: options.resolvers,
    orphanedTypes: options.orphanedTypes,
    container: options.container,
    scalarsMap: [{ type: Date, scalar: DateTimeScalar }],
    validate: false,
    skipCheck: true,
    // Subscription fields are executed by the gateway (subscription-binding.ts), never here.
    pubSub: gatewayExecutedPubSub,
  });
  const resolvers = createResolversMap(schema) as ResolverMap;
  for (const [type, fields] of Object.entries(options.references ?? {})) {
    resolvers[type] = { ...(resolvers[type] ?? {}), ...fields };
  }
  // Scalars printed to SDL lose their behaviour: give it back to those the schema uses.
  for (const scalar of [DateTimeScalar, JSONScalar]) {
    if (schema.getType(scalar.name)) resolvers[scalar.name] = scalar as unknown as Record<string, unknown>;
  }
  return buildSubgraphSchema({
    typeDefs: gql`
      ${FEDERATION_LINK}
      ${streamTypeDefsFor(schema)}
      ${options.extraTypeDefs ?? ''}
      ${withEntityInterfaces(printSchemaWithDirectives(schema), options.entityInterfaces ?? [])}
    `,
    resolvers: resolvers as never,
  });
}

/**
 * The SDL with `@key(fields: "id")` on the named interfaces' definitions (type-graphql's
 * directives are global to a process, and the shared `Node` is an entity in one subgraph only).
 */
function withEntityInterfaces(sdl: string, names: readonly string[]): string {
  if (names.length === 0) return sdl;
  const key: ConstDirectiveNode = {
    kind: Kind.DIRECTIVE,
    name: { kind: Kind.NAME, value: 'key' },
    arguments: [
      { kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: 'fields' }, value: { kind: Kind.STRING, value: 'id' } },
    ],
  };
  return print(
    visit(parse(sdl), {
      InterfaceTypeDefinition: (node) =>
        names.includes(node.name.value) ? { ...node, directives: [...(node.directives ?? []), key] } : undefined,
    }),
  );
}

/** The subgraph's SDL as composition reads it (federation link included, `_service` and `_entities` excluded). */
export function printSubgraph(schema: GraphQLSchema): string {
  return printSubgraphSchema(schema);
}
