import type { Identity, Logger } from '@fleetgraph/kit/core';
import { LRUCache } from 'lru-cache';
import pLimit from 'p-limit';
import type { FieldBinding } from './binding.js';
import { codedError } from './errors.js';
import {
  Kind,
  parse,
  print,
  visit,
  type FieldNode,
  type GraphQLError,
  type NameNode,
  type OperationDefinitionNode,
  type VariableDefinitionNode,
} from './graphql.js';

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

/**
 * Questions of one caller and kind answered by one query at most (aliases of the binding's
 * selection): the gateway's alias limit (limits.ts), which these queries pass through too.
 */
const AUTHORIZATIONS_PER_QUERY = 15;

/**
 * How long a question waits for others of its caller and kind while authorisation queries are
 * running (a reconnect storm: the subscribes of many sockets, read over many turns of the event
 * loop, join one query). An authoriser with nothing running asks at once, in the next turn.
 */
const BATCH_WINDOW_MS = 10;

const batchAlias = (i: number) => `a${i}`;
const batchSuffix = (i: number) => `__${i}`;
const UNAVAILABLE = () => codedError('SERVICE_UNAVAILABLE', 'the subscription could not be authorised; retry');

/** Batched forms of authorisation queries, by query and size (at most 14 per query). */
const batched = new Map<string, string>();

/**
 * `size` copies of an authorisation query's one root field in one operation, the i-th aliased
 * `a<i>` with its variables renamed `<name>__<i>`.
 */
export function batchedQuery(query: string, size: number): string {
  const key = `${size}\n${query}`;
  const known = batched.get(key);
  if (known) return known;
  const document = parse(query);
  const operation = document.definitions[0] as OperationDefinitionNode;
  const root = operation.selectionSet.selections[0] as FieldNode;
  const rename =
    (i: number) =>
    (name: NameNode): NameNode => ({ ...name, value: `${name.value}${batchSuffix(i)}` });
  const definitions: VariableDefinitionNode[] = [];
  const selections: FieldNode[] = [];
  for (let i = 0; i < size; i++) {
    const renamed = rename(i);
    for (const definition of operation.variableDefinitions ?? [])
      definitions.push({
        ...definition,
        variable: { ...definition.variable, name: renamed(definition.variable.name) },
      });
    const field = visit(root, { Variable: (node) => ({ ...node, name: renamed(node.name) }) }) as FieldNode;
    selections.push({ ...field, alias: { kind: Kind.NAME, value: batchAlias(i) } });
  }
  const printed = print({
    ...document,
    definitions: [
      {
        ...operation,
        name: { kind: Kind.NAME, value: `${operation.name?.value ?? 'Authorize'}_batch` },
        variableDefinitions: definitions,
        selectionSet: { ...operation.selectionSet, selections },
      },
    ],
  });
  batched.set(key, printed);
  return printed;
}

/** One question waiting for (or in) an authorisation query, and everyone asking it. */
interface Question {
  binding: QueryAuthorizedBinding;
  args: Record<string, unknown>;
  identity: Identity;
  requestId: string;
  askers: Asker[];
  answer: Promise<GraphQLError | undefined>;
  settle(refusal: GraphQLError | undefined): void;
}

/**
 * The authoriser of one subscription engine: coalescing, remembering, batching questions of one
 * caller and kind, AUTHORIZATIONS_AT_ONCE queries at once, each within `timeoutMs`.
 */
export function createAuthoriser(options: AuthoriserOptions): Authoriser {
  const { log, timeoutMs } = options;
  const limit = pLimit(AUTHORIZATIONS_AT_ONCE);
  const now = options.now ?? Date.now;
  const rememberMs = options.rememberMs ?? 0;
  /** Authorisations queued or running, by claims, query and variables. */
  const pending = new Map<string, Question>();
  /** Questions waiting for a slot, by caller (claims) and kind (the authorisation query). */
  const waitingByKind = new Map<string, Question[]>();
  /** Granted authorisations, by the same key, until when they hold. */
  const granted = new LRUCache<string, number>({ max: options.rememberMax ?? 100_000 });
  let run = 0;
  let remembered = 0;

  /** Runs an authorisation query within `timeoutMs`; a failure or a timeout is thrown. */
  async function ask(query: string, variables: Record<string, unknown>, identity: Identity): Promise<AuthorizeResult> {
    run++;
    let timer: NodeJS.Timeout | undefined;
    try {
      // A subgraph that does not answer must not hold one of the few authorisation slots for long.
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      return await Promise.race([options.authorize(query, variables, identity), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The answer for one question of a result: granted (undefined) when its field is set and no
   * error concerns it; refused exactly like an unknown entity otherwise, unless a service failed.
   */
  function verdict(item: Question, value: unknown, errors: AuthorizeResult['errors']): GraphQLError | undefined {
    if (value != null && !errors?.length) return undefined;
    // A failure of a service (not an answer about the entity) must not read as "not found".
    const unavailable = errors?.some((e) =>
      ['INTERNAL_SERVER_ERROR', 'SERVICE_UNAVAILABLE', undefined].includes(e.extensions?.code as string | undefined),
    );
    if (unavailable) {
      log.warn(
        { requestId: item.requestId, field: item.binding.field, errors },
        'subscription authorisation query failed',
      );
      return UNAVAILABLE();
    }
    return codedError('BAD_USER_INPUT', `${item.binding.authorize.entity} not found`);
  }

  /**
   * Answers up to AUTHORIZATIONS_PER_QUERY questions of one caller and kind waiting in `queue`, in
   * one query (each question an alias of the binding's selection, its variables renamed), or in the
   * binding's own query when one is left. Questions whose askers all left are answered without one.
   */
  async function answer(queue: Question[]): Promise<void> {
    const items: Question[] = [];
    for (const item of queue.splice(0, AUTHORIZATIONS_PER_QUERY)) {
      if (item.askers.some((a) => a.live)) items.push(item);
      // Queued while every client asking left: nothing to authorise for.
      else item.settle(codedError('UNAUTHENTICATED', 'the connection is closing'));
    }
    const first = items[0];
    if (!first) return;
    const { authorize } = first.binding;
    const variablesOf = (item: Question, suffix = '') =>
      Object.fromEntries(authorize.variables.map((v) => [`${v}${suffix}`, item.args[v] ?? null]));
    try {
      if (items.length === 1) {
        const result = await ask(authorize.query, variablesOf(first), first.identity);
        first.settle(verdict(first, result.data?.[authorize.responseKey], result.errors));
        return;
      }
      const query = batchedQuery(authorize.query, items.length);
      const variables = Object.assign({}, ...items.map((item, i) => variablesOf(item, batchSuffix(i))));
      const result = await ask(query, variables, first.identity);
      items.forEach((item, i) => {
        // An error without a path concerns every question; one with a path, its alias's only.
        const errors = result.errors?.filter((e) => {
          const path = (e as { path?: readonly unknown[] }).path;
          return !path?.length || path[0] === batchAlias(i);
        });
        item.settle(verdict(item, result.data?.[batchAlias(i)], errors));
      });
    } catch (failure) {
      log.error(
        { err: failure, requestId: first.requestId, field: first.binding.field },
        'subscription authorisation failed',
      );
      for (const item of items) item.settle(UNAVAILABLE());
    }
  }

  return {
    authorise(asker, binding, args, identity, requestId) {
      const variables = binding.authorize.variables.map((v) => args[v] ?? null);
      // By the query, not the field: the fields of one entity (its conditions, events, health) ask the same.
      const kind = JSON.stringify([identity.claims, binding.authorize.question]);
      const key = `${kind}${JSON.stringify(variables)}`;
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
      let settle!: (refusal: GraphQLError | undefined) => void;
      const item: Question = {
        binding,
        args,
        identity,
        requestId,
        askers: [asker],
        answer: new Promise<GraphQLError | undefined>((resolve) => (settle = resolve)),
        settle: (refusal) => settle(refusal),
      };
      void item.answer.then((refused) => {
        pending.delete(key);
        if (!refused && rememberMs > 0) granted.set(key, now() + rememberMs);
      });
      pending.set(key, item);
      // Questions of one caller and kind wait together; a slot answers up to a query's worth of them.
      let queue = waitingByKind.get(kind);
      if (!queue) {
        queue = [];
        waitingByKind.set(kind, queue);
      }
      queue.push(item);
      if (queue.length % AUTHORIZATIONS_PER_QUERY === 1) {
        const mine = queue;
        const start = () => {
          void limit(async () => {
            await answer(mine);
            if (mine.length === 0 && waitingByKind.get(kind) === mine) waitingByKind.delete(kind);
          });
        };
        // Never at once: the subscribes read with this one join its query. While others run (a
        // reconnect storm), after BATCH_WINDOW_MS: those of the next sockets too, instead of each
        // starting a query of its own (a tenth of the queries, and of their CPU, in the benchmark).
        if (limit.activeCount + limit.pendingCount > 0) setTimeout(start, BATCH_WINDOW_MS);
        else setImmediate(start);
      }
      return item.answer;
    },
    get run() {
      return run;
    },
    get remembered() {
      return remembered;
    },
  };
}
