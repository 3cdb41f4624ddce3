import { readFile } from 'node:fs/promises';
import { ApolloGateway } from '@apollo/gateway';
import { buildSchema } from 'graphql/index.js';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  countTokens,
  isEdgeType,
  LIMITS,
  LIST_BOUNDS,
  limitError,
  measureCost,
  measureShape,
  operationLimitError,
  pageBounds,
  pagedFields,
  shapeLimitError,
  tokenLimitError,
} from './limits.js';
import {
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  isInterfaceType,
  isListType,
  isObjectType,
  parse,
  type GraphQLNamedType,
  type GraphQLSchema,
} from './subscriptions/graphql.js';

/** The limits measured against the API schema of the checked-in supergraph. */
describe('query limits', () => {
  let schema: GraphQLSchema;

  beforeAll(async () => {
    const supergraphSdl = await readFile(new URL('../../schema/supergraph.graphql', import.meta.url), 'utf8');
    const gateway = new ApolloGateway({ supergraphSdl });
    schema = (await gateway.load()).schema as unknown as GraphQLSchema;
    await gateway.stop();
  });

  const operation = (query: string) => {
    const document = parse(query);
    return { document, operation: getOperationAST(document)! };
  };
  const shape = (query: string) => {
    const { document, operation: op } = operation(query);
    return measureShape(document, op);
  };
  /** The cost for these variables as sent (coerced first, as the gateway does). */
  const cost = (query: string, variables: Record<string, unknown> = {}) => {
    const { document, operation: op } = operation(query);
    const { coerced, errors } = getVariableValues(schema, op.variableDefinitions ?? [], variables);
    if (errors) throw errors[0];
    return measureCost(schema, document, op, coerced);
  };
  const refusal = (query: string, variables?: Record<string, unknown>) => {
    const { document, operation: op } = operation(query);
    return operationLimitError(schema, document, op, variables)?.toJSON();
  };

  describe('tokens', () => {
    it('should count tokens as graphql-js does for its maxTokens', () => {
      for (const query of [
        '{ a }',
        'query Q($x: Int = 3) { a(x: $x, s: "s", b: """block""") @skip(if: false) { ...F ... on T { b } } } fragment F on T { c }',
        '# a comment\n{ a, b, c }',
      ]) {
        const tokens = countTokens(query);
        expect(() => parse(query, { maxTokens: tokens })).not.toThrow();
        expect(() => parse(query, { maxTokens: tokens - 1 })).toThrow(/tokens/);
      }
      expect(countTokens('{ a }')).toBe(3);
    });

    it('should refuse more than the limit, naming it and the count, before parsing', () => {
      const query = `{ ${'a '.repeat(LIMITS.maxTokens - 2)}}`;
      expect(tokenLimitError(query)).toBeUndefined();
      expect(tokenLimitError(`${query} `)).toBeUndefined();
      expect(tokenLimitError(`{ b ${query.slice(2)}`)?.toJSON()).toEqual({
        message: `Query token count ${LIMITS.maxTokens + 1} exceeds the limit of ${LIMITS.maxTokens}`,
        extensions: {
          code: 'QUERY_LIMIT_EXCEEDED',
          limit: 'tokens',
          measured: LIMITS.maxTokens + 1,
          max: LIMITS.maxTokens,
        },
      });
      // Tokens before a syntax error count; the parser reports the error itself.
      expect(countTokens('{ a b "unterminated')).toBe(3);
    });
  });

  describe('depth, aliases, directives', () => {
    it("should give a connection's edges the depth of its nodes (an edge's node is no level of its own)", () => {
      const nodes = shape('{ clusters { nodes { events { nodes { reason } } } } }').depth;

      expect(nodes).toBe(5);
      expect(shape('{ clusters { edges { cursor node { events { edges { node { reason } } } } } } }').depth).toBe(
        nodes,
      );
      expect(
        shape(
          '{ clusters { edges { ... on ClusterEdge { ...E } } } } fragment E on ClusterEdge { node { events { edges { node { reason } } } } }',
        ).depth,
      ).toBe(nodes);
      // Query.node is a field like any other.
      expect(shape('{ node(id: "x") { ... on Cluster { events { edges { node { reason } } } } } }').depth).toBe(4);
    });

    it('should measure depth with fragments flattened and introspection left out', () => {
      expect(shape('{ a { b } }').depth).toBe(2);
      expect(shape('{ a { ...F ... on T { c { d } } } } fragment F on T { b { c { d { e } } } }').depth).toBe(5);
      expect(shape('{ __schema { types { fields { type { ofType { ofType { name } } } } } } a }').depth).toBe(1);
    });

    it('should count aliases and directives as often as the operation selects them', () => {
      expect(shape('{ x: a y: a { z: b } }').aliases).toBe(3);
      expect(shape('{ ...F ...F a { ...F } } fragment F on T { x: a y: b @skip(if: false) }')).toEqual({
        depth: 2,
        aliases: 6,
        directives: 3,
      });
      expect(
        shape('query Q($v: Int @d) @d { a @d ... @d { b @d } ...F @d } fragment F on T @d { c @d }').directives,
      ).toBe(8);
    });

    it('should refuse an operation over a limit with a message naming it and the value', () => {
      const deep = '{ clusters { nodes { profile { versions { versions { versions { id } } } } } } }';
      expect(refusal(deep)).toEqual({
        message: 'Query depth 7 exceeds the limit of 6',
        extensions: { code: 'QUERY_LIMIT_EXCEEDED', limit: 'depth', measured: 7, max: 6 },
      });
      expect(refusal('{ clusters { nodes { profile { versions { layers { name } } } } } }')).toBeUndefined();
      const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`;
      expect(refusal(aliases(15))).toBeUndefined();
      expect(refusal(aliases(16))?.message).toBe('Query alias count 16 exceeds the limit of 15');
      const directives = (n: number) => `{ ${'__typename @skip(if: false) '.repeat(n)}}`;
      expect(refusal(directives(50))).toBeUndefined();
      expect(refusal(directives(51))?.message).toBe('Query directive count 51 exceeds the limit of 50');
      const { document, operation: op } = operation(deep);
      expect(shapeLimitError(document, op, { ...LIMITS, maxDepth: 7 })).toBeUndefined();
    });

    it('should end on a fragment cycle (which validation refuses anyway)', () => {
      expect(shape('{ ...A } fragment A on Query { a ...B } fragment B on Query { b: c { d } ...A }')).toEqual({
        depth: 2,
        aliases: 1,
        directives: 0,
      });
      expect(cost('{ ...A } fragment A on Query { __typename ...B } fragment B on Query { __typename ...A }')).toBe(2);
    });
  });

  describe('cost', () => {
    const CLUSTERS_EVENTS = '{ clusters(first: 100) { nodes { events(first: 1000) { nodes { reason } } } } }';
    const CLUSTER_EVENTS = (first: string) =>
      `query($id: ID!) { cluster(id: $id) { id events${first} { nodes { cursor clusterId time severity reason message object } pageInfo { hasNextPage endCursor } } } }`;

    it('should read the page bounds every paged field documents', () => {
      // A paged field whose description has no "1 to N" and "Defaults to D" would be costed at a guess.
      expect(Object.fromEntries(pagedFields(schema))).toEqual({
        'Query.clusters': { arguments: ['first'], max: 100, default: 20 },
        'Query.clusterProfiles': { arguments: ['first'], max: 100, default: 20 },
        'Cluster.events': { arguments: ['first'], max: 1000, default: 50 },
        'Webhook.deliveries': { arguments: ['first'], max: 100, default: 20 },
      });
    });

    it('should count every value the response can hold, lists by their page', () => {
      expect(cost('{ clusters(first: 3) { nodes { id name } pageInfo { hasNextPage } } }')).toBe(1 + 3 * 3 + 2);
      // Without a page argument: the documented default page.
      expect(cost('{ clusters { nodes { id } } }')).toBe(1 + 20 * 2);
      expect(cost('{ cluster(id: "x") { events { nodes { reason } } } }')).toBe(2 + 50 * 2);
      // A list without a page that is part of its parent's record counts as one element (a list of
      // records as its bound: below); __typename counts; introspection does not.
      expect(cost('{ cluster(id: "x") { nodePools { name count } __typename } __schema { types { name } } }')).toBe(
        1 + 3 + 1,
      );
      expect(cost(CLUSTERS_EVENTS)).toBe(1 + 100 * (1 + 1 + 1000 * 2));
    });

    it('should count a page given as a variable, or by a variable default, as a literal one', () => {
      const literal = cost(CLUSTERS_EVENTS);
      const query =
        'query($n: Int, $m: Int) { clusters(first: $n) { nodes { events(first: $m) { nodes { reason } } } } }';
      expect(cost(query, { n: 100, m: 1000 })).toBe(literal);
      expect(
        cost(
          'query($n: Int = 100, $m: Int = 1000) { clusters(first: $n) { nodes { events(first: $m) { nodes { reason } } } } }',
        ),
      ).toBe(literal);
      // Through fragments too.
      expect(
        cost(
          'query($m: Int) { clusters(first: 100) { ...C } } fragment C on ClusterConnection { nodes { ... on Cluster { events(first: $m) { nodes { reason } } } } }',
          { m: 1000 },
        ),
      ).toBe(literal);
      const refused = {
        message: `Query cost ${literal} exceeds the limit of ${LIMITS.maxCost}`,
        extensions: { code: 'QUERY_LIMIT_EXCEEDED', limit: 'cost', measured: literal, max: LIMITS.maxCost },
      };
      expect(refusal(CLUSTERS_EVENTS)).toEqual(refused);
      expect(refusal(query, { n: 100, m: 1000 })).toEqual(refused);
      expect(refusal(query, { n: 1, m: 1000 })).toBeUndefined();
      // Variables that do not coerce: the operation is refused for them (BAD_USER_INPUT), not measured.
      expect(refusal(query, { n: 'many' })).toBeUndefined();
    });

    it('should accept the largest page of events in a single-cluster query, and cost a larger one as the largest', () => {
      expect(cost(CLUSTER_EVENTS('(first: 1000)'), { id: 'x' })).toBe(3 + 1000 * 8 + 3);
      expect(refusal(CLUSTER_EVENTS('(first: 1000)'), { id: 'x' })).toBeUndefined();
      // More than the max is refused as such (below), not costed beyond what the field can return.
      expect(cost(CLUSTER_EVENTS('(first: 100000)'), { id: 'x' })).toBe(
        cost(CLUSTER_EVENTS('(first: 1000)'), { id: 'x' }),
      );
      expect(cost(CLUSTER_EVENTS('(first: 0)'), { id: 'x' })).toBe(cost(CLUSTER_EVENTS('(first: 1)'), { id: 'x' }));
      expect(cost('{ clusters(first: 5000) { nodes { id } } }')).toBe(1 + 100 * 2);
    });

    it('should refuse a page outside its documented bounds with BAD_USER_INPUT, before the cost', () => {
      expect(refusal(CLUSTER_EVENTS('(first: 1001)'), { id: 'x' })).toEqual({
        message: 'first must be between 1 and 1000 on Cluster.events (got 1001)',
        extensions: { code: 'BAD_USER_INPUT', field: 'Cluster.events', argument: 'first', value: 1001, max: 1000 },
      });
      expect(refusal(CLUSTER_EVENTS('(first: 0)'), { id: 'x' })?.message).toBe(
        'first must be between 1 and 1000 on Cluster.events (got 0)',
      );
      // Over the cost limit as well, through a variable and a fragment: the page size is what is told.
      expect(
        refusal(
          'query($n: Int) { clusters(first: $n) { ...C } } fragment C on ClusterConnection { nodes { events(first: 1000) { nodes { reason } } } }',
          { n: 101 },
        )?.message,
      ).toBe('first must be between 1 and 100 on Query.clusters (got 101)');
    });

    it("should cost a connection's edges as its nodes, plus their cursors", () => {
      expect(cost('{ clusters(first: 3) { edges { cursor node { id name } } pageInfo { hasNextPage } } }')).toBe(
        1 + 3 * (1 + 1 + 2) + 2,
      );
      expect(cost('{ clusters(first: 3) { edges { node { id name } } } }')).toBe(
        cost('{ clusters(first: 3) { nodes { id name } } }'),
      );
      const literal = cost(CLUSTERS_EVENTS);
      const edges = '{ clusters(first: 100) { edges { node { events(first: 1000) { edges { node { reason } } } } } } }';
      expect(cost(edges)).toBe(literal);
      expect(refusal(edges)?.extensions).toMatchObject({
        code: 'QUERY_LIMIT_EXCEEDED',
        limit: 'cost',
        measured: literal,
      });
      // Through fragments, on the edge and on the node.
      expect(
        cost(
          'query($m: Int) { clusters(first: 100) { edges { ...E } } } fragment E on ClusterEdge { node { ...C } } fragment C on Cluster { events(first: $m) { edges { node { reason } } } }',
          { m: 1000 },
        ),
      ).toBe(literal);
      // The largest page of events with every field and its cursor is served.
      const events = `query($id: ID!) { cluster(id: $id) { id events(first: 1000) { edges { cursor node { cursor clusterId time severity reason message object } } pageInfo { hasNextPage endCursor } } } }`;
      expect(cost(events, { id: 'x' })).toBe(3 + 1000 * 9 + 3);
      expect(refusal(events, { id: 'x' })).toBeUndefined();
    });

    it('should cost every edges field of the schema as a list of edges, each with a cursor and a node', () => {
      const edgesFields = Object.values(schema.getTypeMap()).flatMap((type) =>
        !type.name.startsWith('__') && (isObjectType(type) || isInterfaceType(type))
          ? Object.values(type.getFields())
              .filter((f) => f.name === 'edges')
              .map((f) => ({ owner: type.name, field: f }))
          : [],
      );
      const connections = Object.keys(schema.getTypeMap()).filter((name) => name.endsWith('Connection'));

      expect(edgesFields.map((e) => e.owner).sort()).toEqual(connections.sort());
      for (const { field } of edgesFields) {
        expect(isListType(getNullableType(field.type))).toBe(true);
        expect(isEdgeType(getNamedType(field.type))).toBe(true);
      }
    });

    it('should accept every field of a cluster with its largest page of events', () => {
      const query = `query($id: ID!) { cluster(id: $id) { id projectId name profile { id projectId name version description cloud layers { type name version values ansibleRoles imageRef skipK8sInstall } createdAt } cloud { type region credentialRef } nodePools { name role count instanceType availabilityZones } phase conditions { type status active failed reason message code lastTransitionTime attempts } generation observedGeneration createdAt events(first: 1000) { nodes { cursor clusterId time severity reason message object } pageInfo { hasNextPage endCursor } } availableUpdates { id projectId name version description cloud layers { type name version values ansibleRoles imageRef skipK8sInstall } createdAt } health { status lastHeartbeatAt reasons { factor message since stale } stale changedAt } usage { scope coresTotal coresUsed cpuUsage memoryTotalBytes memoryUsedBytes memoryUsage cpuRequestsCores memoryRequestsBytes diskTotalBytes diskUsedBytes diskUsage nodes observedAt stale series { time cpuCores memoryBytes } } nodes { name role pool zone instanceType conditions { type status reason message } usage { scope coresTotal coresUsed cpuUsage memoryTotalBytes memoryUsedBytes memoryUsage cpuRequestsCores memoryRequestsBytes diskTotalBytes diskUsedBytes diskUsage nodes observedAt stale series { time cpuCores memoryBytes } } pods stale observedAt } services { namespace name type urls } images { id signature os osVersion kubernetesVersion cloud region source status artifactId ansibleRoles createdAt description message log updatedAt } logBundles { id clusterId status message fileName sizeBytes downloadUrl requestedAt readyAt } } }`;
      // Its 500 availableUpdates and 500 images counted (gateway/README.md, Cost).
      expect(cost(query, { id: 'x' })).toBe(25_617);
      expect(cost(query, { id: 'x' })).toBeLessThan(LIMITS.maxCost);
      expect(tokenLimitError(query)).toBeUndefined();
      expect(refusal(query, { id: 'x' })).toBeUndefined();
    });
  });

  describe('lists without a page argument', () => {
    /** The walk-around of a hostile review: 12 profiles, each with three levels of its versions. */
    const VERSIONS_OF_VERSIONS =
      '{ clusterProfiles(projectId: "web", first: 12) { nodes { versions { versions { versions { id name version } } } } } }';

    /** Every object and interface type of a schema with its fields. */
    const fieldsOf = (s: GraphQLSchema) =>
      Object.values(s.getTypeMap()).flatMap((type) =>
        !type.name.startsWith('__') && (isObjectType(type) || isInterfaceType(type))
          ? Object.values(type.getFields()).map((field) => ({ owner: type.name, field }))
          : [],
      );

    it('should have a page argument, a page of its connection, or a bound for every list field of the API schema', async () => {
      const api = buildSchema(await readFile(new URL('../../schema/api.graphql', import.meta.url), 'utf8'));
      const fields = fieldsOf(api as unknown as GraphQLSchema);
      // A connection: the type of a paged field that is not a list, whose lists hold its page.
      const connections = new Set(
        fields
          .filter(({ field }) => pageBounds(field) && !isListType(getNullableType(field.type)))
          .map(({ field }) => getNamedType(field.type).name),
      );
      const lists = fields.filter(({ field }) => isListType(getNullableType(field.type)));
      const unbounded = lists
        .filter(({ owner, field }) => !pageBounds(field) && !connections.has(owner))
        .map(({ owner, field }) => `${owner}.${field.name}`)
        .filter((name) => !(name in LIST_BOUNDS));

      expect(unbounded).toEqual([]);
      // And no bound of a field that is not an unpaged list (any more).
      const unpaged = new Set(
        lists.filter(({ field }) => !pageBounds(field)).map(({ owner, field }) => `${owner}.${field.name}`),
      );
      expect(Object.keys(LIST_BOUNDS).filter((name) => !unpaged.has(name))).toEqual([]);
      for (const [name, bound] of Object.entries(LIST_BOUNDS)) {
        expect(bound.max, name).toBeGreaterThan(0);
        expect(bound.where, name).not.toBe('');
      }
    });

    it('should count a list of records by its bound, and hold no record below a part of a record', () => {
      // What a type leads to: itself and the types of its fields, transitively.
      const reachable = (start: GraphQLNamedType) => {
        const seen = new Map<string, GraphQLNamedType>();
        const walk = (type: GraphQLNamedType) => {
          if (seen.has(type.name)) return;
          seen.set(type.name, type);
          if (isObjectType(type) || isInterfaceType(type))
            for (const field of Object.values(type.getFields())) walk(getNamedType(field.type));
        };
        walk(start);
        return [...seen.values()];
      };
      const isRecord = (type: GraphQLNamedType) =>
        (isObjectType(type) || isInterfaceType(type)) && type.getInterfaces().some((i) => i.name === 'Node');
      for (const { owner, field } of fieldsOf(schema)) {
        const bound = LIST_BOUNDS[`${owner}.${field.name}`];
        if (!bound) continue;
        const element = getNamedType(field.type);
        // A list of records (Node) is counted as many as its service returns.
        if (isRecord(element))
          expect({ list: `${owner}.${field.name}`, kind: bound.kind }).toMatchObject({ kind: 'records' });
        if (bound.kind !== 'part') continue;
        // A part leads to no record, no paged field and no list of records: nesting cannot multiply through it.
        for (const type of reachable(element)) {
          expect({ part: `${owner}.${field.name}`, reaches: type.name, record: isRecord(type) }).toMatchObject({
            record: false,
          });
          if (!isObjectType(type)) continue;
          for (const inner of Object.values(type.getFields())) {
            const kind = LIST_BOUNDS[`${type.name}.${inner.name}`]?.kind;
            expect({
              part: `${owner}.${field.name}`,
              reaches: `${type.name}.${inner.name}`,
              paged: !!pageBounds(inner),
            }).toMatchObject({ paged: false });
            if (kind)
              expect({ part: `${owner}.${field.name}`, reaches: `${type.name}.${inner.name}`, kind }).toMatchObject({
                kind: 'part',
              });
          }
        }
      }
    });

    it("should count a list of records by its service's bound: versions of versions are refused", () => {
      expect(cost('{ clusterProfile(id: "x") { versions { id } } }')).toBe(1 + 500 * 2);
      expect(cost('{ cluster(id: "x") { logBundles { id } availableUpdates { id } } }')).toBe(1 + 100 * 2 + 500 * 2);
      expect(cost('{ images { id } webhooks(projectId: "p") { id } apiKeys(projectId: "p") { id } }')).toBe(
        2000 * 2 + 20 * 2 + 200 * 2,
      );
      // Through a page, a fragment and another list alike.
      expect(
        cost(
          '{ clusters(first: 10) { nodes { ...C } } } fragment C on Cluster { profile { versions { layers { name } } } }',
        ),
      ).toBe(1 + 10 * (1 + 1 + 500 * (1 + 1 * 2)));
      const measured = 1 + 12 * (1 + 500 * (1 + 500 * (1 + 500 * 4)));
      expect(cost(VERSIONS_OF_VERSIONS)).toBe(measured);
      expect(refusal(VERSIONS_OF_VERSIONS)).toEqual({
        message: `Query cost ${measured} exceeds the limit of ${LIMITS.maxCost}`,
        extensions: { code: 'QUERY_LIMIT_EXCEEDED', limit: 'cost', measured, max: LIMITS.maxCost },
      });
      expect(
        refusal('{ clusterProfile(id: "x") { versions { versions { id name version } } } }')?.extensions,
      ).toMatchObject({
        code: 'QUERY_LIMIT_EXCEEDED',
        limit: 'cost',
        measured: 1 + 500 * (1 + 500 * 4),
      });
      expect(refusal('{ clusters(first: 100) { nodes { availableUpdates { id } } } }')?.extensions).toMatchObject({
        limit: 'cost',
      });
      // A part of a record counts as one element, as the record does.
      expect(cost('{ cluster(id: "x") { nodes { name conditions { type } } } }')).toBe(1 + 1 + 1 + 1 * 2);
    });

    it("should serve every operation of the project's clients at the largest pages their fields allow", async () => {
      const manifest = JSON.parse(
        await readFile(new URL('../../client/persisted-query-manifest.json', import.meta.url), 'utf8'),
      ) as { operations: { name: string; body: string }[] };
      expect(manifest.operations.length).toBeGreaterThan(20);
      const largestPage = Math.max(...[...pagedFields(schema).values()].map((b) => b.max!));
      for (const { name, body } of manifest.operations) {
        const { document, operation: op } = operation(body);
        // Each page variable at the largest page any field allows: costed as its own field's largest.
        const variables = Object.fromEntries(
          (op.variableDefinitions ?? [])
            .filter((v) => v.variable.name.value === 'first')
            .map((v) => [v.variable.name.value, largestPage]),
        );
        const refused = tokenLimitError(body) ?? shapeLimitError(document, op);
        expect({ name, refused: refused?.message }).toEqual({ name, refused: undefined });
        expect({ name, cost: measureCost(schema, document, op, variables) }).toEqual({
          name,
          cost: expect.toSatisfy((n: number) => n <= LIMITS.maxCost),
        });
      }
    });
  });

  it('should name every limit in its message', () => {
    expect(limitError('cost', 12, 10).message).toBe('Query cost 12 exceeds the limit of 10');
    expect(limitError('tokens', 12, 10).message).toBe('Query token count 12 exceeds the limit of 10');
  });
});
