import type { ApolloServerPlugin } from '@apollo/server';
import { capLabel, defineHistogram, ErrorCodes, secondsSince } from '@fleetgraph/kit/core';

/**
 * The gateway's own metrics, in the process's registry beside the kit's (HTTP requests, NATS) and
 * the subscription engine's: each operation a client ran, by name, type and outcome, and each
 * request the query planner sent to a subgraph. Operation names come from clients: those of the
 * trusted documents' manifests are kept as they are, and the first 100 others seen; every later
 * one is `other`. Anonymous operations are `anonymous`; one refused before its operation was known
 * (a syntax error, an unknown operation name) is `unresolved`.
 */

/** An error code as a label: the registry's codes, else `other` (codes from elsewhere are not bounded). */
function codeLabel(code: unknown): string {
  return typeof code === 'string' && code in ErrorCodes ? code : 'other';
}

/** The outcome of a GraphQL result: `ok`, or the code of its first error. */
function outcomeOf(errors: readonly { extensions?: Record<string, unknown> }[] | undefined): string {
  const first = errors?.[0];
  return first ? codeLabel(first.extensions?.code) : 'ok';
}

const operationDuration = defineHistogram<'operation_name' | 'operation_type' | 'outcome'>({
  name: 'fleetgraph_gateway_operation_duration_seconds',
  help: "Clients' queries and mutations over HTTP, from the request to the response, by operation name (bounded), type, and outcome (ok, or the first error's code).",
  labelNames: ['operation_name', 'operation_type', 'outcome'],
});

const subgraphDuration = defineHistogram<'subgraph' | 'outcome'>({
  name: 'fleetgraph_gateway_subgraph_request_duration_seconds',
  help: 'Requests the gateway sent to a subgraph for a client operation, by subgraph and outcome (ok, the first error code, or error when no GraphQL answer came).',
  labelNames: ['subgraph', 'outcome'],
});

/**
 * An Apollo Server plugin measuring each client operation (HTTP requests only: a context with
 * `mediaType`; the gateway's own authorisation queries for subscriptions are counted by the
 * subscription engine).
 */
export function useOperationMetrics<T extends { mediaType?: unknown }>(options: {
  /** Operation names kept as labels whatever their number (the trusted documents'). */
  knownOperationNames?: Iterable<string>;
  /** Other names kept as labels, the first seen. @default 100 */
  maxOperationNames?: number;
}): ApolloServerPlugin<T> {
  const histogram = operationDuration;
  const name = capLabel({ known: options.knownOperationNames, max: options.maxOperationNames ?? 100 });
  return {
    async requestDidStart({ contextValue }) {
      if (!contextValue.mediaType) return;
      const started = performance.now();
      let operationName = 'unresolved';
      let operationType = 'unknown';
      return {
        async didResolveOperation({ operation, operationName: resolved }) {
          operationName = resolved ? name(resolved) : 'anonymous';
          if (operation) operationType = operation.operation;
        },
        async willSendResponse({ response, errors }) {
          const body = response.body.kind === 'single' ? response.body.singleResult : undefined;
          const outcome = outcomeOf(body?.errors ?? errors);
          histogram.observe(
            { operation_name: operationName, operation_type: operationType, outcome },
            secondsSince(started),
          );
        },
      };
    },
  };
}

/** Times one request to a subgraph, its outcome taken from the GraphQL answer. */
export function meterSubgraph(subgraph: string) {
  const histogram = subgraphDuration;
  return async <R extends { errors?: readonly { extensions?: Record<string, unknown> }[] }>(
    send: () => Promise<R>,
  ): Promise<R> => {
    const started = performance.now();
    try {
      const response = await send();
      histogram.observe({ subgraph, outcome: outcomeOf(response.errors) }, secondsSince(started));
      return response;
    } catch (error) {
      histogram.observe({ subgraph, outcome: 'error' }, secondsSince(started));
      throw error;
    }
  };
}
