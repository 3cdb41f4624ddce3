import type { Identity, Logger } from '@fleetgraph/kit/core';
import { LRUCache } from 'lru-cache';
import pLimit from 'p-limit';
import type { FieldBinding } from './binding.js';
import { codedError } from './errors.js';
import type { GraphQLError } from './graphql.js';

/** A binding that authorises its subscribes by a query. */
export type QueryAuthorizedBinding = FieldBinding & Required<Pick<FieldBinding, 'authorize'>>;

/** What the gateway's federated query path answered to an authorisation query. */
export interface AuthorizeResult {
  data?: Record<string, unknown> | null;
  errors?: readonly { message: string; extensions?: Record<string, unknown> }[];
}

/** Who asks for an authorisation: once every asker of a queued question has left, it is not run. */
export interface Asker {
  /** False once the asker's connection is gone. */
  readonly live: boolean;
}

/** What createAuthoriser asks its questions through. */
export interface AuthoriserOptions {
  /** Runs a query through the gateway's federated query path as `identity`. */
  authorize(query: string, variables: Record<string, unknown>, identity: Identity): Promise<AuthorizeResult>;
  log: Logger;
  /** How long an authorisation query may take before the subscribe is refused as SERVICE_UNAVAILABLE. */
  timeoutMs: number;
  /** How long a granted authorisation is remembered (0: not at all). @default 0 */
  rememberMs?: number;
  /** The most authorisations remembered at once (the least recently used go first). @default 100000 */
  rememberMax?: number;
  /** @default Date.now */
  now?: () => number;
}

/** Decides whether a caller may subscribe, by a binding's `authorize` query (see gateway/README.md). */
export interface Authoriser {
  /**
   * Runs the binding's authorisation query for `args` as `identity`, queued behind at most
   * AUTHORIZATIONS_AT_ONCE others, and shared by the subscribes asking the same while it is queued
   * or running: the same claims for the same authorisation query and variables get the same answer
   * (a burst of reconnecting dashboards asks it many times). A granted one is remembered for
   * `rememberMs` (a refusal never is): a subscribe of the same claims to an entity deleted (or
   * made unreadable) since may start within that time, and no later. Resolves to the error that
   * refuses the subscription, or to undefined when it may start.
   */
  authorise(
    asker: Asker,
    binding: QueryAuthorizedBinding,
    args: Record<string, unknown>,
    identity: Identity,
    requestId: string,
  ): Promise<GraphQLError | undefined>;
  /** Authorisation queries run so far (identical ones in flight run once, remembered ones not again). */
  readonly run: number;
  /** Subscribes granted from memory so far. */
  readonly remembered: number;
}

/**
 * Authorisation queries (federated queries through the gateway) run at once; more subscribes wait.
 * A burst of subscribes (clients reconnecting to this replica) then holds a queue of small waits,
 * not thousands of queries in flight and the memory each one holds until it answers.
 */
const AUTHORIZATIONS_AT_ONCE = 32;

/** The authoriser of one subscription engine: coalescing, AUTHORIZATIONS_AT_ONCE at once, each within `timeoutMs`. */
export function createAuthoriser(options: AuthoriserOptions): Authoriser {
  const { log, timeoutMs } = options;
  const limit = pLimit(AUTHORIZATIONS_AT_ONCE);
  const now = options.now ?? Date.now;
  const rememberMs = options.rememberMs ?? 0;
  /** Authorisations queued or running, by claims, query and variables. */
  const pending = new Map<string, { answer: Promise<GraphQLError | undefined>; askers: Asker[] }>();
  /** Granted authorisations, by the same key, until when they hold. */
  const granted = new LRUCache<string, number>({ max: options.rememberMax ?? 100_000 });
  let run = 0;
  let remembered = 0;

  /** Refuses a subscription whose entity the caller cannot read, exactly like an unknown one. */
  async function authorise(
    binding: QueryAuthorizedBinding,
    args: Record<string, unknown>,
    identity: Identity,
    requestId: string,
  ): Promise<GraphQLError | undefined> {
    const variables = Object.fromEntries(binding.authorize.variables.map((v) => [v, args[v] ?? null]));
    let result: AuthorizeResult;
    run++;
    let timer: NodeJS.Timeout | undefined;
    try {
      // A subgraph that does not answer must not hold one of the few authorisation slots for long.
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      result = await Promise.race([options.authorize(binding.authorize.query, variables, identity), timedOut]);
    } catch (failure) {
      log.error({ err: failure, requestId, field: binding.field }, 'subscription authorisation failed');
      return codedError('SERVICE_UNAVAILABLE', 'the subscription could not be authorised; retry');
    } finally {
      clearTimeout(timer);
    }
    const value = result.data?.[binding.authorize.responseKey];
    if (value != null && !result.errors?.length) return undefined;
    // A failure of a service (not an answer about the entity) must not read as "not found".
    const unavailable = result.errors?.some((e) =>
      ['INTERNAL_SERVER_ERROR', 'SERVICE_UNAVAILABLE', undefined].includes(e.extensions?.code as string | undefined),
    );
    if (unavailable) {
      log.warn({ requestId, field: binding.field, errors: result.errors }, 'subscription authorisation query failed');
      return codedError('SERVICE_UNAVAILABLE', 'the subscription could not be authorised; retry');
    }
    return codedError('BAD_USER_INPUT', `${binding.authorize.entity} not found`);
  }

  return {
    authorise(asker, binding, args, identity, requestId) {
      const variables = binding.authorize.variables.map((v) => args[v] ?? null);
      // By the query, not the field: the fields of one entity (its conditions, events, health) ask the same.
      const key = JSON.stringify([identity.claims, binding.authorize.question, variables]);
      const until = granted.get(key);
      if (until !== undefined) {
        if (until > now()) {
          remembered++;
          return Promise.resolve(undefined);
        }
        granted.delete(key);
      }
      const waiting = pending.get(key);
      if (waiting) {
        waiting.askers.push(asker);
        return waiting.answer;
      }
      const entry = { answer: Promise.resolve<GraphQLError | undefined>(undefined), askers: [asker] };
      entry.answer = limit(() =>
        // Queued while every client asking left: nothing to authorise for.
        entry.askers.some((a) => a.live)
          ? authorise(binding, args, identity, requestId)
          : Promise.resolve(codedError('UNAUTHENTICATED', 'the connection is closing')),
      ).finally(() => pending.delete(key));
      if (rememberMs > 0)
        void entry.answer.then((refused) => {
          if (!refused) granted.set(key, now() + rememberMs);
        });
      pending.set(key, entry);
      return entry.answer;
    },
    get run() {
      return run;
    },
    get remembered() {
      return remembered;
    },
  };
}
