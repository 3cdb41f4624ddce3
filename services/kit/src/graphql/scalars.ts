import { GraphQLScalarType } from 'graphql';
import { DateTimeISOResolver, JSONResolver } from 'graphql-scalars';

/** `DateTime` of the contract: an ISO-8601 string in UTC; graphql-scalars' DateTimeISO under the contract's name. */
export const DateTimeScalar = new GraphQLScalarType({
  ...DateTimeISOResolver.toConfig(),
  name: 'DateTime',
  description: 'An ISO-8601 date and time in UTC, such as 2026-11-23T10:15:30.000Z.',
});

/** `JSON` of the contract: any JSON value. */
export const JSONScalar = new GraphQLScalarType({ ...JSONResolver.toConfig(), name: 'JSON' });
