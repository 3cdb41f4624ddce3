import { ApolloServer } from '@apollo/server';
import { processRegistry } from '@fleetgraph/kit/core';
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { meterSubgraph, useOperationMetrics } from './metrics.js';

/** Observations of a histogram of the process's registry, by their labels as `k=v,...`. */
async function counts(name: string): Promise<Map<string, number>> {
  const metric = processRegistry.getSingleMetric(name)!;
  const { values } = await metric.get();
  return new Map(
    values
      .filter((v) => (v as { metricName?: string }).metricName === `${name}_count`)
      .map((v) => [
        Object.entries(v.labels)
          .map(([k, value]) => `${k}=${value}`)
          .join(','),
        v.value,
      ]),
  );
}

describe('gateway metrics', () => {
  it('should measure client operations by bounded name, type and outcome, leaving the gateway own ones out', async () => {
    const server = new ApolloServer<{ mediaType?: string }>({
      typeDefs: 'type Query { ok: Int, forbidden: Int, odd: Int }',
      resolvers: {
        Query: {
          ok: () => 1,
          forbidden: () => {
            throw new GraphQLError('no', { extensions: { code: 'FORBIDDEN' } });
          },
          odd: () => {
            throw new GraphQLError('odd', { extensions: { code: 'SOMETHING_OF_A_LIBRARY' } });
          },
        },
      },
      plugins: [useOperationMetrics({ knownOperationNames: ['Known'], maxOperationNames: 1 })],
    });
    await server.start();
    const client = { contextValue: { mediaType: 'application/json' } };
    try {
      await server.executeOperation({ query: 'query Known { ok }' }, client);
      await server.executeOperation({ query: 'query First { ok }' }, client);
      await server.executeOperation({ query: 'query Second { forbidden }' }, client);
      await server.executeOperation({ query: 'query Third { odd }' }, client);
      await server.executeOperation({ query: '{ ok }' }, client);
      await server.executeOperation({ query: '{ ok ' }, client);
      // The gateway's own operations (subscription authorisations) carry no media type.
      await server.executeOperation({ query: 'query Own { ok }' }, { contextValue: {} });
    } finally {
      await server.stop();
    }
    expect(Object.fromEntries(await counts('fleetgraph_gateway_operation_duration_seconds'))).toEqual({
      'operation_name=Known,operation_type=query,outcome=ok': 1,
      'operation_name=First,operation_type=query,outcome=ok': 1,
      'operation_name=other,operation_type=query,outcome=FORBIDDEN': 1,
      'operation_name=other,operation_type=query,outcome=other': 1,
      'operation_name=anonymous,operation_type=query,outcome=ok': 1,
      'operation_name=unresolved,operation_type=unknown,outcome=GRAPHQL_PARSE_FAILED': 1,
    });
  });

  it('should measure requests to a subgraph by outcome: ok, the first error code, or error without an answer', async () => {
    const meter = meterSubgraph('widgets');
    await meter(async () => ({ data: {}, errors: undefined }));
    await meter(async () => ({ errors: [{ message: 'x', extensions: { code: 'UNAUTHENTICATED' } }] }));
    await expect(
      meter(async () => {
        throw new Error('ECONNREFUSED');
      }),
    ).rejects.toThrow('ECONNREFUSED');
    const observed = await counts('fleetgraph_gateway_subgraph_request_duration_seconds');
    expect(observed.get('subgraph=widgets,outcome=ok')).toBe(1);
    expect(observed.get('subgraph=widgets,outcome=UNAUTHENTICATED')).toBe(1);
    expect(observed.get('subgraph=widgets,outcome=error')).toBe(1);
  });
});
