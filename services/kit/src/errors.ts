import { GraphQLError } from 'graphql';

/**
 * Every `extensions.code` that Fleetgraph puts on a top-level GraphQL error, with what it means.
 * Domain and validation outcomes of mutations are not here: they are `userErrors` in payloads.
 */
export const ErrorCodes = {
  UNAUTHENTICATED: 'No valid credentials: a missing, malformed or expired bearer token (or internal identity header).',
  FORBIDDEN: 'The caller is known but its roles do not allow this operation.',
  BAD_USER_INPUT: 'An argument is invalid in a way the schema cannot express (a malformed cursor, an out-of-range page size).',
  GRAPHQL_VALIDATION_FAILED: 'The operation does not validate against the schema, or exceeds a limit (depth, aliases, tokens, cost).',
  SERVICE_UNAVAILABLE: 'A service the operation needs could not be reached; retrying later may succeed.',
  INTERNAL_SERVER_ERROR: 'An unexpected failure; its details are logged with the request id, never sent.',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** A GraphQL error whose code comes from the registry. */
export function graphqlError(code: ErrorCode, message: string, options?: { cause?: unknown }): GraphQLError {
  return new GraphQLError(message, { extensions: { code }, originalError: options?.cause instanceof Error ? options.cause : undefined });
}
