import { GraphQLError } from 'graphql';

/**
 * Every `extensions.code` that Fleetgraph puts on a top-level GraphQL error, with what it means.
 * Domain and validation outcomes of mutations are not here: they are `userErrors` in payloads.
 */
export const ErrorCodes = {
  UNAUTHENTICATED: 'No valid credentials: a missing, malformed or expired bearer token (or internal identity header).',
  FORBIDDEN: 'The caller is known but its roles do not allow this operation.',
  BAD_USER_INPUT:
    'An argument is invalid in a way the schema cannot express (a malformed cursor, an out-of-range page size).',
  BAD_REQUEST:
    'The HTTP request carries no operation the gateway takes: a malformed or oversized body, a batch, ' +
    'a subscription posted to /graphql.',
  GRAPHQL_PARSE_FAILED: 'The operation is not a GraphQL document: the message is the syntax error, with its location.',
  GRAPHQL_VALIDATION_FAILED: 'The operation does not validate against the schema.',
  QUERY_LIMIT_EXCEEDED:
    'The operation exceeds a limit of the gateway (tokens, depth, aliases, directives, cost): ' +
    'the message names the limit and the value measured, e.g. "Query depth 9 exceeds the limit of 6".',
  SERVICE_UNAVAILABLE: 'A service the operation needs could not be reached; retrying later may succeed.',
  INTERNAL_SERVER_ERROR: 'An unexpected failure; its details are logged with the request id, never sent.',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** A GraphQL error whose code comes from the registry. */
export function graphqlError(code: ErrorCode, message: string, options?: { cause?: unknown }): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code },
    originalError: options?.cause instanceof Error ? options.cause : undefined,
  });
}
