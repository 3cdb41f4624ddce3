import type { ApolloServerPlugin } from '@apollo/server';
import type { Request, Response } from 'express';
import type { GraphQLFormattedError } from 'graphql';

/**
 * Status codes as the GraphQL over HTTP specification gives them (see gateway/README.md, GraphQL
 * over HTTP), by the media type the response is in, which Apollo negotiates from `Accept` the same
 * way (`application/json` unless the client prefers the other):
 *
 * - `application/graphql-response+json`: a request error (the document does not parse or validate,
 *   variables do not coerce, a limit is exceeded, no operation can be told) is 400;
 * - `application/json`: the same errors are 200 (the spec's SHOULD: a client cannot tell a 4xx
 *   of the server from one of a proxy in the same media type); `errors` without `data` tell them.
 *
 * Requests that are not well-formed GraphQL requests (no JSON, no query, a batch) are 400 in both,
 * and so on: 401 without valid credentials, 405, 413, 415, 429.
 */
export const MEDIA_TYPES = {
  JSON: 'application/json',
  GRAPHQL_RESPONSE: 'application/graphql-response+json',
} as const;
export type ResponseMediaType = (typeof MEDIA_TYPES)[keyof typeof MEDIA_TYPES];

/** The media type of the answer to `req`, negotiated as Apollo Server does: JSON unless the client prefers the other. */
export function responseMediaType(req: Request): ResponseMediaType {
  const preferred = req.accepts([MEDIA_TYPES.JSON, MEDIA_TYPES.GRAPHQL_RESPONSE]);
  return preferred === MEDIA_TYPES.GRAPHQL_RESPONSE ? preferred : MEDIA_TYPES.JSON;
}

/** The status of a request error (an operation refused before it runs) in this media type. */
export const requestErrorStatus = (mediaType: ResponseMediaType): number =>
  mediaType === MEDIA_TYPES.GRAPHQL_RESPONSE ? 400 : 200;

/** Answers GraphQL errors (no `data`) in the request's media type. */
export function sendErrors(
  req: Request,
  res: Response,
  errors: readonly GraphQLFormattedError[],
  status: number | ((mediaType: ResponseMediaType) => number),
  headers: Record<string, string> = {},
): void {
  const mediaType = responseMediaType(req);
  res
    .status(typeof status === 'number' ? status : status(mediaType))
    .set({ ...headers, 'content-type': `${mediaType}; charset=utf-8` })
    .send(JSON.stringify({ errors }));
}

/**
 * Apollo answers request errors 400 in both media types: in `application/json`, this plugin makes
 * them 200 (not the refusal of a subscription, which this transport does not serve: 400 in both). A request error is a 400 of a well-formed request: one whose document Apollo got
 * (`didResolveSource`), unlike a body without a query or a malformed persisted-query extension.
 * `mediaType` comes from the operation's context (set from the HTTP request).
 */
export function useGraphQLOverHttpStatus<
  Context extends { mediaType?: ResponseMediaType },
>(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart({ contextValue }) {
      if (contextValue.mediaType !== MEDIA_TYPES.JSON) return;
      let wellFormed = false;
      return {
        async didResolveSource() {
          wellFormed = true;
        },
        async willSendResponse({ response, operation }) {
          // A subscription is not a request error but one this transport does not serve: 400 in both.
          if (operation?.operation === 'subscription') return;
          const result = response.body.kind === 'single' ? response.body.singleResult : undefined;
          if (wellFormed && response.http.status === 400 && result && result.data === undefined)
            response.http.status = requestErrorStatus(MEDIA_TYPES.JSON);
        },
      };
    },
  };
}
