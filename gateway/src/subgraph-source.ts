import { type GraphQLDataSourceProcessOptions, RemoteGraphQLDataSource } from '@apollo/gateway';
import {
  defineCounter,
  type Identity,
  INTERNAL_IDENTITY_HEADER,
  REQUEST_ID_HEADER,
  tracedFetch,
} from '@fleetgraph/kit/core';
import { meterSubgraph } from './metrics.js';
import { failoverFetch } from './supergraph.js';

/** What the gateway's requests to subgraphs carry: the verified caller, and the client request's id. */
export interface SubgraphRequestContext {
  identity?: Identity;
  requestId?: string;
}

type Process = ReturnType<RemoteGraphQLDataSource<SubgraphRequestContext>['process']>;
type SubgraphResponse = Awaited<Process>;
type SubgraphRequest = GraphQLDataSourceProcessOptions<SubgraphRequestContext>['request'];
type FetchedResponse = NonNullable<SubgraphResponse['http']>;
type ErrorFrom = RemoteGraphQLDataSource<SubgraphRequestContext>['errorFromResponse'];

const shared = defineCounter<'subgraph'>({
  name: 'fleetgraph_gateway_subgraph_fetches_shared_total',
  help: 'Subgraph queries of client operations answered by an identical one already in flight (same subgraph, document, variables and caller identity) rather than sent again, by subgraph.',
  labelNames: ['subgraph'],
});

/** A subgraph's answer, read once, for each request that shares it to read again. */
interface ReadAnswer {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: string;
}

const isMutation = (query: string | undefined) => query !== undefined && /^\s*mutation\b/.test(query);

export interface SubgraphSourceOptions {
  /** The subgraph's name, for spans and metrics. */
  name: string;
  /** Its replicas' URLs, failed over in turn. */
  urls: readonly string[];
  /** Signs the caller's internal identity token (createInternalIdentitySigner: the same for minutes). */
  sign(identity: Identity): Promise<string>;
  /** Whether identical queries in flight are sent once (see SubgraphSource). @default true */
  shareInflight?: boolean;
}

/**
 * The gateway's requests to one subgraph: Node's own fetch (undici) rather than the default
 * make-fetch-happen, whose cache and retry layers the gateway does not use; failover over the
 * subgraph's replicas; a CLIENT span per attempt with the trace context sent along; the caller's
 * internal identity token and the request id in headers.
 *
 * Identical queries in flight are sent once: a query of a client operation (never a mutation)
 * whose subgraph, document, variables and identity token are those of one already sent and not yet
 * answered waits for that answer and reads it as its own. The identity token holds every claim of
 * the caller (tenant, subject, roles) and the signer gives one token per verified credential, so
 * two callers share an answer only when they present the same credential's claims: never across
 * tenants, users or roles (the key is the token's whole text). Nothing is kept once answered: no
 * answer outlives the request that fetched it. The request id sent is the first request's.
 */
export class SubgraphSource extends RemoteGraphQLDataSource<SubgraphRequestContext> {
  /** Times each request of a client operation (fleetgraph_gateway_subgraph_request_duration_seconds). */
  private readonly meter: ReturnType<typeof meterSubgraph>;
  private readonly send: typeof fetch;
  private readonly inflight = new Map<string, Promise<ReadAnswer>>();

  constructor(private readonly options: SubgraphSourceOptions) {
    const send = failoverFetch(options.urls, { fetch: tracedFetch(options.name) });
    super({ url: options.urls[0]!, fetcher: send as never });
    this.send = send;
    this.meter = meterSubgraph(options.name);
  }

  /**
   * A client operation's request: sent (or joined, see the class) and read here, as
   * RemoteGraphQLDataSource would but without its per-request node-fetch Headers and Request
   * objects, APQ, cache-control hints and hooks, none of which the gateway uses. Health checks and
   * schema loads (not a client's) go the library's way.
   */
  override process(options: GraphQLDataSourceProcessOptions<SubgraphRequestContext>): Process {
    if (!('incomingRequestContext' in options)) return super.process(options);
    return this.meter(() => this.fetchForClient(options.request, options.context));
  }

  private async fetchForClient(request: SubgraphRequest, context: SubgraphRequestContext): Promise<SubgraphResponse> {
    const { query, variables, operationName, extensions } = request;
    if (!query) throw new Error('Missing query');
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    // Only operations of a client carry an identity; the gateway itself sends none.
    const identity = context.identity ? await this.options.sign(context.identity) : undefined;
    if (identity !== undefined) {
      headers[INTERNAL_IDENTITY_HEADER] = identity;
      headers[REQUEST_ID_HEADER] = context.requestId ?? '';
    }
    const body = JSON.stringify({ query, variables, operationName, extensions });
    const response =
      this.options.shareInflight !== false && identity !== undefined && !isMutation(query)
        ? await this.sendShared(this.url, body, headers, identity)
        : await this.send(this.url, { method: 'POST', headers, body });
    const fetched = response as unknown as FetchedResponse;
    if (!response.ok) throw await this.errorFromResponse(response as unknown as Parameters<ErrorFrom>[0]);
    const answer: unknown = await response.json();
    if (answer === null || typeof answer !== 'object' || Array.isArray(answer))
      throw new Error(`Expected JSON response body, but received: ${String(answer)}`);
    return { ...(answer as object), http: fetched };
  }

  private async sendShared(
    url: string,
    body: string,
    headers: Record<string, string>,
    identity: string,
  ): Promise<Response> {
    const key = `${url}\n${identity}\n${body}`;
    let pending = this.inflight.get(key);
    if (pending) {
      shared.inc({ subgraph: this.options.name });
    } else {
      pending = (async () => {
        const response = await this.send(url, { method: 'POST', headers, body });
        return {
          status: response.status,
          statusText: response.statusText,
          headers: [...response.headers],
          body: await response.text(),
        };
      })();
      this.inflight.set(key, pending);
      const forget = () => this.inflight.delete(key);
      pending.then(forget, forget);
    }
    const answer = await pending;
    return new Response(answer.body, { status: answer.status, statusText: answer.statusText, headers: answer.headers });
  }
}
