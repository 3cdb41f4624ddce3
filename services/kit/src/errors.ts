import { GraphQLError } from 'graphql';

/**
 * Every `extensions.code` that Fleetgraph puts on a top-level GraphQL error, with what it means.
 * Domain and validation outcomes of mutations are not here: they are `userErrors` in payloads.
 */
export const ErrorCodes = {
  UNAUTHENTICATED:
    'No valid credentials: a missing, malformed, expired or refused bearer token (HS256 or of the identity ' +
    'provider), an API key that is unknown, revoked or expired (or an internal identity header): HTTP 401, ' +
    'graphql-ws close 4403.',
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
  PERSISTED_QUERY_NOT_FOUND:
    'An operation sent by its hash alone (automatic persisted queries) whose text the gateway does not hold: ' +
    'send it again with its query text (Apollo clients do so by themselves). With trusted documents enforced: ' +
    'no trusted document has this hash.',
  PERSISTED_QUERY_NOT_IN_LIST:
    'The gateway runs trusted documents only (TRUSTED_DOCUMENTS=enforce) and this operation is not one of them.',
  RATE_LIMITED:
    'The caller (a token subject or API key, or an address without valid credentials) is over its rate limit: ' +
    'HTTP 429 with Retry-After, graphql-ws close 4429; retry after the seconds given (extensions.retryAfter).',
  SERVICE_UNAVAILABLE:
    'A service the operation needs could not be reached, or the credentials cannot be checked now (the ' +
    "identity provider's keys or the API key service out of reach, HTTP 503); retrying later may succeed.",
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
