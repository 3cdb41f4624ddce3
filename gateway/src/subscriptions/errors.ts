import type { ErrorCode } from '@fleetgraph/kit/core';
import { GraphQLError } from './graphql.js';

/**
 * A GraphQL error with a code of the registry (`@fleetgraph/kit`'s ErrorCodes), made from this
 * engine's graphql instance (see graphql.ts), which graphql-ws's `instanceof` checks accept.
 */
export function codedError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
}

/** Whether a step of preparing a subscription answered with errors rather than its result. */
export const isErrors = <T extends object>(value: T | readonly GraphQLError[]): value is readonly GraphQLError[] =>
  Array.isArray(value);
