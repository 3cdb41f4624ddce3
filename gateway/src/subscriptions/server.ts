import { createHash, randomUUID } from 'node:crypto';
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { AuthenticationError, StreamReplay, verifyBearer, type ErrorCode, type Identity, type Logger, type VerifiedBearer } from '@fleetgraph/kit';
import { handleProtocols, type SubscribePayload } from 'graphql-ws';
import { LRUCache } from 'lru-cache';
import pLimit from 'p-limit';
import type { Registry } from 'prom-client';
import { WebSocket, WebSocketServer } from 'ws';
import { costLimitError, fragmentsOf, shapeLimitError, tokenLimitError } from '../limits.js';
import { AFTER_ARGUMENT, readBindings, subjectFor, type FieldBinding } from './binding.js';
import { parseCursor } from './cursor.js';
import {
  executeSync,
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  Kind,
  parse,
  validate,
  visit,
  type DocumentNode,
  type FieldNode,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
} from './graphql.js';
import { createHub, type Execution, type Listener, type StartFrom, type Watch } from './hub.js';
import { createSubscriptionMetrics, type SubscriptionStats } from './metrics.js';
import { EventSourceUnavailableError, type EventSource } from './source.js';
import { SsePeer, sseFrame, SubscriptionCloseCode, WebSocketPeer, type Peer } from './peers.js';
import { useGraphqlWs } from './transport.js';

export { SLOW_CONSUMER_REASON, SubscriptionCloseCode } from './peers.js';

/** What the gateway's federated query path answered to an authorisation query. */
export interface AuthorizeResult {
  data?: Record<string, unknown> | null;
  errors?: readonly { message: string; extensions?: Record<string, unknown> }[];
}

export interface SubscriptionServerOptions {
  /** The gateway's HTTP server: graphql-ws shares it (and the path) with queries. */
  server: HttpServer;
  /** @default '/graphql' */
  path?: string;
  /** Verifies client tokens: `verify`, or verifyBearer with this secret. */
  jwtSecret: string;
  /** Verifies a client's `Authorization` value (the gateway's, which remembers verified tokens). */
  verify?: (authorization: string | undefined) => Promise<VerifiedBearer>;
  source: EventSource;
  /** Runs a query through the gateway's federated query path as `identity`. */
  authorize(query: string, variables: Record<string, unknown>, identity: Identity): Promise<AuthorizeResult>;
  log: Logger;
  /**
   * Bytes a connection may have waiting in its send buffer before it is closed as a slow consumer.
   * @default 1 MiB
   */
  bufferLimitBytes?: number;
  /** Subscriptions one connection may hold at once. @default 100 */
  maxSubscriptionsPerConnection?: number;
  /** Largest incoming WebSocket message. @default 64 KiB */
  maxMessageBytes?: number;
  /** How long a closed slow consumer or a socket at shutdown gets to finish the close handshake. @default 5000 */
  closeGraceMs?: number;
  /** graphql-ws keep-alive: a ping this often, and a socket without pong for as long is dropped. @default 12000 */
  keepAliveMs?: number;
  /** Hides internal error messages from clients. @default false */
  production?: boolean;
  /** See HubOptions.patternConsumerAt. @default 32 */
  patternConsumerAt?: number;
  /** How long an authorisation query may take before the subscribe is refused as SERVICE_UNAVAILABLE. @default 10000 */
  authorizationTimeoutMs?: number;
}

/** The gateway's subscription engine (see gateway/README.md, Subscriptions). */
export interface SubscriptionServer {
  /**
   * Serves the Subscription fields bound by `@jetstream` in this supergraph, validated against its
   * API schema. Subscriptions already running keep the binding they started with.
   * @throws StreamBindingError listing every problem of the bindings
   */
  setSchema(apiSchema: GraphQLSchema, supergraphSdl: string): void;
  /** The Subscription fields served. */
  readonly fields: readonly string[];
  /** Prometheus registry for `/metrics`. */
  readonly metrics: Registry;
  stats(): SubscriptionStats;
  /**
   * Serves one subscription over Server-Sent Events (GraphQL over SSE, distinct connections mode):
   * GET or POST (with the body already parsed as JSON) with `Accept: text/event-stream`.
   */
  serveSse(request: IncomingMessage & { body?: unknown }, response: ServerResponse): Promise<void>;
  /** Closes every socket with 1001 going away, ends every SSE stream, and removes every consumer. */
  close(): Promise<void>;
}

interface Served {
  schema: GraphQLSchema;
  bindings: Map<string, FieldBinding>;
  /** Compiled documents by operation name and text (see compile). */
  compiled: LRUCache<string, Compiled>;
  /** The executions of the running subscriptions, by subject and execution key (see acquireExecution). */
  executions: Map<string, SharedExecution>;
}

/**
 * What preparing a subscription derives from its document alone: the same for every subscription
 * that sends the same text and operation name, so computed once (parsing and validating are most
 * of the work of a subscribe) and one document shared instead of a copy per subscription.
 */
interface Compiled {
  document: DocumentNode;
  field: FieldNode;
  name: string;
  binding: FieldBinding;
  definition: GraphQLField<unknown, unknown>;
  operation: OperationDefinitionNode;
  /** The variables the selection uses: with the tenant and the text, what decides an execution's result. */
  selectionVariables: string[];
}

/** One execution of a selection over each event, shared by the subscriptions of a subject with the same execution key. */
interface SharedExecution {
  execution: Execution;
  subscriptions: number;
}

/**
 * Authorisation queries (federated queries through the gateway) run at once; more subscribes wait.
 * A burst of subscribes (clients reconnecting to this replica) then holds a queue of small waits,
 * not thousands of queries in flight and the memory each one holds until it answers.
 */
const AUTHORIZATIONS_AT_ONCE = 32;

/** Documents kept compiled per schema. */
const COMPILED_DOCUMENTS = 500;
/** Longer documents are compiled for each subscription and not kept. */
const COMPILED_MAX_LENGTH = 16 * 1024;

interface Connection {
  peer: Peer;
  /** What `connections` holds it by: its socket, or its SSE response. */
  key: object;
  /** False once dropped (closed, cut off, expired). */
  live: boolean;
  identity: Identity;
  expiry?: NodeJS.Timeout;
  /** Subscriptions being prepared (authorisation, replay start) or running. */
  active: number;
  running: Set<Running>;
  cut: boolean;
}

/** What a connection ends its subscriptions by. */
interface Running {
  end(): void;
}

const ignore = () => {};

/** What onSubscribe prepared, handed to `subscribe` as the execution context. */
interface Plan {
  served: Served;
  compiled: Compiled;
  connection: Connection;
  id: string;
  payload: SubscribePayload;
  subject: string;
  from: StartFrom;
  executionKey: string;
  requestId: string;
}

const isErrors = <T extends object>(value: T | readonly GraphQLError[]): value is readonly GraphQLError[] => Array.isArray(value);

function error(code: ErrorCode, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

/** The single root field of a subscription operation, through fragments if need be. */
function rootField(operation: OperationDefinitionNode, document: DocumentNode): FieldNode | undefined {
  const fragments = fragmentsOf(document);
  const stack = [...operation.selectionSet.selections];
  while (stack.length > 0) {
    const selection = stack.shift()!;
    if (selection.kind === Kind.FIELD) return selection;
    if (selection.kind === Kind.INLINE_FRAGMENT) stack.unshift(...selection.selectionSet.selections);
    else stack.unshift(...(fragments.get(selection.name.value)?.selectionSet.selections ?? []));
  }
  return undefined;
}

/**
 * Refuses `@skip`/`@include` on the way to a subscription's root field, as the GraphQL
 * specification does since 2021 (graphql-js 16 throws on some such documents instead of
 * reporting them): whether a subscription watches anything cannot depend on a variable.
 */
function conditionalRoot(document: DocumentNode): GraphQLError | undefined {
  const fragments = fragmentsOf(document);
  const seen = new Set<string>();
  const check = (selections: readonly SelectionNode[]): GraphQLError | undefined => {
    for (const selection of selections) {
      const directive = selection.directives?.find((d) => d.name.value === 'skip' || d.name.value === 'include');
      if (directive) return new GraphQLError(`a subscription's root selection cannot carry @${directive.name.value}`, { nodes: [directive], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const found = check(selection.selectionSet.selections);
        if (found) return found;
      } else if (selection.kind === Kind.FRAGMENT_SPREAD && !seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const found = check(fragments.get(selection.name.value)?.selectionSet.selections ?? []);
        if (found) return found;
      }
    }
    return undefined;
  };
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION || definition.operation !== 'subscription') continue;
    const found = check(definition.selectionSet.selections);
    if (found) return found;
  }
  return undefined;
}

/**
 * Variables whose values can change the result of executing the operation over an event: every
 * one the operation uses (through its fragments too, and in the directives on the way to the
 * root field) but the root field's own arguments, which pick the subject, not the result.
 */
function selectionVariables(operation: OperationDefinitionNode, field: FieldNode, document: DocumentNode): string[] {
  const fragments = fragmentsOf(document);
  const names = new Set<string>();
  const seen = new Set<string>();
  const walk = (node: Parameters<typeof visit>[0]) =>
    visit(node, {
      Variable: (v) => void names.add(v.name.value),
      Field: (node) => {
        if (node !== field) return undefined;
        // The root field: its selection and directives, not its arguments.
        if (node.selectionSet) walk(node.selectionSet);
        for (const directive of node.directives ?? []) walk(directive);
        return false;
      },
      FragmentSpread: (spread) => {
        const fragment = fragments.get(spread.name.value);
        if (fragment && !seen.has(fragment.name.value)) {
          seen.add(fragment.name.value);
          walk(fragment);
        }
      },
    });
  walk(operation.selectionSet);
  for (const directive of operation.directives ?? []) walk(directive);
  return [...names].sort();
}

/** Creates the subscription engine and serves graphql-ws on the HTTP server's path. */
export function createSubscriptionServer(options: SubscriptionServerOptions): SubscriptionServer {
  const { log, source } = options;
  const bufferLimit = options.bufferLimitBytes ?? 1024 * 1024;
  const maxPerConnection = options.maxSubscriptionsPerConnection ?? 100;
  const closeGraceMs = options.closeGraceMs ?? 5_000;
  const authorizationTimeoutMs = options.authorizationTimeoutMs ?? 10_000;
  const verify = options.verify ?? ((authorization: string | undefined) => verifyBearer(authorization, options.jwtSecret));
  const hub = createHub(source, log, { patternConsumerAt: options.patternConsumerAt });
  /** Open connections, by socket or SSE response. */
  const connections = new Map<object, Connection>();
  let served: Served | undefined;
  let closing = false;
  let subscriptions = 0;
  let delivered = 0;
  let slowConsumers = 0;
  let authorisationsRun = 0;
  let maxBufferedBytes = 0;

  const stats = (): SubscriptionStats => {
    const h = hub.stats();
    return {
      connections: connections.size,
      subscriptions,
      consumers: source.consumers,
      delivered,
      executions: h.executions,
      messages: h.messages,
      authorisations: authorisationsRun,
      slowConsumers,
      maxBufferedBytes,
    };
  };

  const authorisations = pLimit(AUTHORIZATIONS_AT_ONCE);
  /** Authorisations queued or running, by claims, field and variables (see authoriseOnce). */
  const pendingAuthorisations = new Map<string, { answer: Promise<GraphQLError | undefined>; connections: Connection[] }>();
  const wss = new WebSocketServer({ server: options.server, path: options.path ?? '/graphql', maxPayload: options.maxMessageBytes ?? 64 * 1024, handleProtocols });

  function openConnection(peer: Peer, key: object, identity: Identity, expiresAt: Date | undefined): Connection {
    const connection: Connection = { peer, key, live: true, identity, active: 0, running: new Set(), cut: false };
    connections.set(key, connection);
    if (expiresAt) armExpiry(connection, expiresAt.getTime());
    return connection;
  }

  function dropConnection(connection: Connection) {
    if (!connection.live) return;
    connection.live = false;
    connections.delete(connection.key);
    clearTimeout(connection.expiry);
    for (const running of [...connection.running]) running.end();
  }

  /** Closes the connection of a client that stopped reading, and makes sure it goes even if it never answers the close. */
  function cutOff(connection: Connection) {
    if (connection.cut) return;
    connection.cut = true;
    slowConsumers++;
    log.warn({ user: connection.identity.userId, buffered: connection.peer.buffered }, 'closing a slow subscription consumer');
    for (const running of [...connection.running]) running.end();
    connection.peer.cutOff(closeGraceMs);
  }

  function armExpiry(connection: Connection, expiresAt: number) {
    const wait = expiresAt - Date.now();
    if (wait <= 0) {
      connection.peer.expire();
      return;
    }
    // setTimeout takes at most 2^31 - 1 ms: re-arm for longer-lived tokens.
    connection.expiry = setTimeout(armExpiry, Math.min(wait, 2 ** 31 - 1), connection, expiresAt);
    connection.expiry.unref();
  }

  /**
   * Parses and validates a subscription document and measures it against the query limits (as
   * POST /graphql does: tokens before parsing, then depth, aliases and directives; the cost, which
   * depends on the variables, in prepare), or takes it from the schema's compiled documents, which
   * hold only documents within the limits.
   */
  function compile(current: Served, payload: SubscribePayload): Compiled | readonly GraphQLError[] {
    // No operation name (null or absent) is "\u0001", which no GraphQL name can be.
    const key = `${payload.operationName ?? '\u0001'}\u0000${payload.query}`;
    const cached = current.compiled.get(key);
    if (cached) return cached;
    const tooLong = tokenLimitError(payload.query);
    if (tooLong) return [tooLong];
    let document: DocumentNode;
    try {
      document = parse(payload.query);
    } catch (syntaxError) {
      // As Apollo answers it on POST /graphql.
      const { message, source, positions } = syntaxError as GraphQLError;
      return [new GraphQLError(message, { source, positions, extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
    }
    const conditional = conditionalRoot(document);
    if (conditional) return [conditional];
    let invalid: readonly GraphQLError[];
    try {
      invalid = validate(current.schema, document);
    } catch (failure) {
      // graphql-js's rules can throw on documents they do not expect (it is a bad document, not our fault).
      if (!(failure instanceof GraphQLError)) throw failure;
      invalid = [failure];
    }
    if (invalid.length > 0) return invalid.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }));
    const operation = getOperationAST(document, payload.operationName);
    if (!operation) return [error('GRAPHQL_VALIDATION_FAILED', 'the document does not name one operation to run')];
    const overLimit = shapeLimitError(document, operation);
    if (overLimit) return [overLimit];
    if (operation.operation !== 'subscription') {
      // Over the cost limit, a query is refused for that here as well (the limits are the same everywhere).
      const variables = getVariableValues(current.schema, operation.variableDefinitions ?? [], payload.variables ?? {}, { maxErrors: 1 });
      const tooCostly = variables.coerced && costLimitError(current.schema, document, operation, variables.coerced);
      return [tooCostly || error('BAD_USER_INPUT', 'only subscriptions are served here: send queries and mutations with POST /graphql')];
    }
    const field = rootField(operation, document)!;
    const name = field.name.value;
    const binding = current.bindings.get(name);
    const definition = current.schema.getSubscriptionType()?.getFields()[name];
    if (!binding || !definition) return [error('BAD_USER_INPUT', `Subscription.${name} is not served`)];
    const compiled: Compiled = { document, field, name, binding, definition, operation, selectionVariables: selectionVariables(operation, field, document) };
    if (payload.query.length <= COMPILED_MAX_LENGTH) current.compiled.set(key, compiled);
    return compiled;
  }

  async function prepare(connection: Connection, id: string, payload: SubscribePayload): Promise<Plan | readonly GraphQLError[]> {
    const current = served;
    if (!current) return [error('SERVICE_UNAVAILABLE', 'subscriptions are not served yet; retry')];
    const compiled = compile(current, payload);
    if (isErrors(compiled)) return compiled;
    const { field, name, binding, definition, operation } = compiled;

    const variables = getVariableValues(current.schema, operation.variableDefinitions ?? [], payload.variables ?? {});
    if (variables.errors) return variables.errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'BAD_USER_INPUT' } }));
    const tooCostly = costLimitError(current.schema, compiled.document, operation, variables.coerced);
    if (tooCostly) return [tooCostly];
    let args: Record<string, unknown>;
    try {
      args = getArgumentValues(definition, field, variables.coerced);
    } catch (argumentError) {
      return [new GraphQLError((argumentError as Error).message, { extensions: { code: 'BAD_USER_INPUT' } })];
    }
    const { identity } = connection;
    let subject: string;
    try {
      subject = subjectFor(binding, identity.tenantId, args);
    } catch (tokenError) {
      return [error('BAD_USER_INPUT', (tokenError as Error).message)];
    }

    let from: StartFrom = { kind: 'now' };
    if (binding.replay === StreamReplay.LAST) from = { kind: 'last' };
    else if (binding.replay === StreamReplay.CURSOR && args[AFTER_ARGUMENT] != null) {
      const seq = parseCursor(String(args[AFTER_ARGUMENT]));
      if (seq === undefined) return [error('BAD_USER_INPUT', `after is not a cursor of Subscription.${name}`)];
      from = { kind: 'after', seq };
    }

    // Copied: randomUUID() returns a rope of its pieces (some 350 bytes), kept as long as the subscription.
    const requestId = Buffer.from(randomUUID(), 'latin1').toString('latin1');
    const denied = await authoriseOnce(connection, binding, args, identity, requestId);
    if (denied) return [denied];

    // The result depends only on the event, the document and the variables its selection uses:
    // subscribers agreeing on those (within a tenant, which the subject holds too) share one execution.
    const used = Object.fromEntries(compiled.selectionVariables.map((v) => [v, payload.variables?.[v] ?? null]));
    const executionKey = createHash('sha256')
      .update(JSON.stringify([identity.tenantId, payload.operationName ?? null, payload.query, used]))
      .digest('base64url');
    return { served: current, compiled, connection, id, payload, subject, from, executionKey, requestId };
  }

  /**
   * The execution of a plan's group: one per subject and execution key while any subscription
   * uses it (the hub executes once per event per key anyway; this keeps one closure, not one per
   * subscription). Released by `releaseExecution`.
   */
  function acquireExecution(plan: Plan): Execution {
    const key = `${plan.subject}\u0000${plan.executionKey}`;
    const shared = plan.served.executions.get(key);
    if (shared) {
      shared.subscriptions++;
      return shared.execution;
    }
    const { served: current, payload, subject } = plan;
    const { schema } = current;
    const { document, name, binding } = plan.compiled;
    const variableValues = payload.variables ?? {};
    const operationName = payload.operationName ?? undefined;
    const execution: Execution = {
      key: plan.executionKey,
      cursorField: binding.cursorField,
      isComplete: binding.complete,
      execute(event) {
        try {
          return JSON.stringify(executeSync({ schema, document, rootValue: { [name]: event }, variableValues, operationName }));
        } catch (failure) {
          log.error({ err: failure, subject }, 'could not execute a subscription selection');
          return JSON.stringify({ errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
        }
      },
    };
    current.executions.set(key, { execution, subscriptions: 1 });
    return execution;
  }

  function releaseExecution(plan: Plan) {
    const key = `${plan.subject}\u0000${plan.executionKey}`;
    const shared = plan.served.executions.get(key);
    if (shared && --shared.subscriptions === 0) plan.served.executions.delete(key);
  }

  /**
   * authorise, queued behind at most AUTHORIZATIONS_AT_ONCE others, and shared by the subscribes
   * asking the same while it is queued or running: the same claims for the same field and
   * variables get the same answer (a burst of reconnecting dashboards asks it many times). Only
   * questions in flight are shared, so no answer outlives the query that gave it.
   */
  function authoriseOnce(connection: Connection, binding: FieldBinding, args: Record<string, unknown>, identity: Identity, requestId: string) {
    const variables = binding.authorize.variables.map((v) => args[v] ?? null);
    const key = JSON.stringify([identity.claims, binding.field, variables]);
    const pending = pendingAuthorisations.get(key);
    if (pending) {
      pending.connections.push(connection);
      return pending.answer;
    }
    const entry = { answer: Promise.resolve<GraphQLError | undefined>(undefined), connections: [connection] };
    entry.answer = authorisations(() =>
      // Queued while every client asking left: nothing to authorise for.
      entry.connections.some((c) => c.live)
        ? authorise(binding, args, identity, requestId)
        : Promise.resolve(error('UNAUTHENTICATED', 'the connection is closing')),
    ).finally(() => pendingAuthorisations.delete(key));
    pendingAuthorisations.set(key, entry);
    return entry.answer;
  }

  /** Refuses a subscription whose entity the caller cannot read, exactly like an unknown one. */
  async function authorise(binding: FieldBinding, args: Record<string, unknown>, identity: Identity, requestId: string): Promise<GraphQLError | undefined> {
    const variables = Object.fromEntries(binding.authorize.variables.map((v) => [v, args[v] ?? null]));
    let result: AuthorizeResult;
    authorisationsRun++;
    let timer: NodeJS.Timeout | undefined;
    try {
      // A subgraph that does not answer must not hold one of the few authorisation slots for long.
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${authorizationTimeoutMs} ms`)), authorizationTimeoutMs);
      });
      result = await Promise.race([options.authorize(binding.authorize.query, variables, identity), timedOut]);
    } catch (failure) {
      log.error({ err: failure, requestId, field: binding.field }, 'subscription authorisation failed');
      return error('SERVICE_UNAVAILABLE', 'the subscription could not be authorised; retry');
    } finally {
      clearTimeout(timer);
    }
    const value = result.data?.[binding.authorize.responseKey];
    if (value != null && !result.errors?.length) return undefined;
    // A failure of a service (not an answer about the entity) must not read as "not found".
    const unavailable = result.errors?.some((e) => ['INTERNAL_SERVER_ERROR', 'SERVICE_UNAVAILABLE', undefined].includes(e.extensions?.code as string | undefined));
    if (unavailable) {
      log.warn({ requestId, field: binding.field, errors: result.errors }, 'subscription authorisation query failed');
      return error('SERVICE_UNAVAILABLE', 'the subscription could not be authorised; retry');
    }
    return error('BAD_USER_INPUT', `${binding.authorize.entity} not found`);
  }

  /**
   * A started subscription, in every role it plays: the hub's listener (frames go straight to the
   * socket: one serialized result per execution, shared by every subscriber of the execution), the
   * iterator graphql-ws drives (it never yields: it ends, and graphql-ws sends `complete`, or
   * fails, and graphql-ws sends `error`), and what its connection ends it by. One object rather
   * than a closure per role: with thousands of idle subscriptions, closures were much of their memory.
   */
  class Subscription implements Running, Listener, AsyncIterableIterator<never> {
    private ended = false;
    private counted = false;
    private watch: Watch | undefined;
    private readonly finished: Promise<IteratorResult<never>>;
    private settle!: (result: IteratorResult<never>) => void;
    private fail!: (reason: unknown) => void;
    /** The `next` frame up to its payload, with this subscription's id, and after it. */
    private readonly prefix: string;
    private readonly suffix: string;
    readonly execution: Execution;

    constructor(private readonly plan: Plan) {
      this.finished = new Promise<IteratorResult<never>>((resolve, reject) => {
        this.settle = resolve;
        this.fail = reject;
      });
      [this.prefix, this.suffix] = plan.connection.peer.framing(plan.id);
      this.execution = acquireExecution(plan);
      plan.connection.running.add(this);
    }

    async start(): Promise<this> {
      const { plan } = this;
      const { connection } = plan;
      if (!connection.live) {
        this.end();
        return this;
      }
      try {
        const watch = await hub.watch({ stream: plan.compiled.binding.stream, subject: plan.subject, pattern: plan.compiled.binding.pattern, from: plan.from, execution: this.execution, listener: this });
        this.watch = watch;
        // Ended (the connection dropped, or LAST delivered a final state) while the watch was starting.
        if (this.ended) watch.close();
        else {
          this.counted = true;
          subscriptions++;
        }
      } catch (failure) {
        // NATS away: expected during an outage, and said so to the client (retry once it is back).
        if (failure instanceof EventSourceUnavailableError) {
          log.warn({ requestId: plan.requestId, subject: plan.subject }, 'subscription refused: NATS is unreachable');
          this.end(error('SERVICE_UNAVAILABLE', failure.message));
          return this;
        }
        log.error({ err: failure, requestId: plan.requestId, subject: plan.subject }, 'subscription could not start');
        this.end(error('SERVICE_UNAVAILABLE', 'the subscription could not start; retry'));
      }
      return this;
    }

    /** Ends the subscription (idempotent); with a failure, graphql-ws sends it as an `error`. */
    end(failure?: GraphQLError): void {
      if (this.ended) return;
      this.ended = true;
      const { connection } = this.plan;
      releaseExecution(this.plan);
      if (this.counted) subscriptions--;
      connection.running.delete(this);
      connection.active--;
      this.watch?.close();
      if (failure) {
        // graphql-ws may never call next() (the client left first): the failure must not go unhandled.
        this.finished.catch(ignore);
        this.fail(failure);
      } else this.settle({ done: true, value: undefined });
    }

    /** As the hub's listener: sends an event's result. */
    next(result: string): void;
    /** As graphql-ws's iterator (called without a value): settles when the subscription ends. */
    next(): Promise<IteratorResult<never>>;
    next(result?: string): Promise<IteratorResult<never>> | void {
      if (result === undefined) return this.finished;
      const { peer } = this.plan.connection;
      if (this.ended || !peer.writable) return;
      if (peer.buffered > bufferLimit) return cutOff(this.plan.connection);
      peer.send(this.prefix + result + this.suffix);
      delivered++;
      const buffered = peer.buffered;
      if (buffered > maxBufferedBytes) maxBufferedBytes = buffered;
    }

    complete(): void {
      this.end();
    }

    error(failure: Error): void {
      log.warn({ err: failure, requestId: this.plan.requestId, subject: this.plan.subject }, 'subscription event source failed');
      this.end(error('SERVICE_UNAVAILABLE', 'the event stream failed; subscribe again (with your last cursor)'));
    }

    async return(): Promise<IteratorResult<never>> {
      this.end();
      return { done: true, value: undefined };
    }

    [Symbol.asyncIterator](): this {
      return this;
    }
  }

  const graphqlWs = useGraphqlWs(
    {
      onConnect: async (ctx) => {
        const { socket } = ctx.extra;
        if (closing) {
          socket.close(SubscriptionCloseCode.GoingAway, 'going away');
          return false;
        }
        const authorization = ctx.connectionParams?.authorization;
        let verified: VerifiedBearer;
        try {
          verified = await verify(typeof authorization === 'string' ? authorization : undefined);
        } catch (failure) {
          socket.close(SubscriptionCloseCode.Forbidden, failure instanceof AuthenticationError ? `Forbidden: ${failure.message}` : 'Forbidden');
          return false;
        }
        if (socket.readyState !== WebSocket.OPEN) return false;
        openConnection(new WebSocketPeer(socket), socket, verified.identity, verified.expiresAt);
        return true;
      },
      onClose: (ctx) => {
        const connection = connections.get(ctx.extra.socket);
        if (connection) dropConnection(connection);
      },
      onSubscribe: async (ctx, id, payload) => {
        const connection = connections.get(ctx.extra.socket);
        if (!connection || connection.cut) return [error('UNAUTHENTICATED', 'the connection is closing')];
        if (connection.active >= maxPerConnection) {
          return [error('BAD_USER_INPUT', `a connection holds at most ${maxPerConnection} subscriptions`)];
        }
        connection.active++;
        let plan: Plan | readonly GraphQLError[];
        try {
          plan = await prepare(connection, id, payload);
        } catch (failure) {
          connection.active--;
          log.error({ err: failure }, 'could not prepare a subscription');
          return [error('INTERNAL_SERVER_ERROR', 'Internal server error')];
        }
        if (isErrors(plan)) {
          connection.active--;
          return plan;
        }
        return { schema: plan.served.schema, document: plan.compiled.document, operationName: payload.operationName, contextValue: plan };
      },
      subscribe: (args) => new Subscription(args.contextValue as Plan).start(),
    },
    wss,
    { production: options.production ?? false, keepAliveMs: options.keepAliveMs ?? 12_000, log },
  );

  /** SSE streams open, for keep-alive comments and shutdown. */
  const sseStreams = new Set<ServerResponse>();
  const keepAliveMs = options.keepAliveMs ?? 12_000;
  const ssePings =
    keepAliveMs > 0
      ? setInterval(() => {
          for (const response of sseStreams) {
            // Not after end() (writing then would throw), and not on top of frames still waiting.
            if (!response.writableEnded && !response.destroyed && response.writableLength === 0) response.write(sseFrame.ping);
          }
        }, keepAliveMs).unref()
      : undefined;

  /** A JSON answer before any stream opens (graphql-response+json errors, as for queries). */
  function refuse(response: ServerResponse, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    response.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
  }

  /** The operation of an SSE request: GET search parameters or a POST's JSON body. */
  function sseOperation(request: IncomingMessage & { body?: unknown }): SubscribePayload | string {
    let raw: Record<string, unknown>;
    if (request.method === 'GET') {
      const search = new URL(request.url ?? '/', 'http://gateway').searchParams;
      raw = { query: search.get('query') ?? undefined, operationName: search.get('operationName') ?? undefined };
      const variables = search.get('variables');
      if (variables) {
        try {
          raw.variables = JSON.parse(variables) as unknown;
        } catch {
          return 'variables must be a JSON object';
        }
      }
    } else {
      if (request.body === null || typeof request.body !== 'object' || Array.isArray(request.body)) return 'the body must be a JSON object';
      raw = request.body as Record<string, unknown>;
    }
    const { query, variables, operationName } = raw;
    if (typeof query !== 'string' || query.length === 0) return 'query must be a non-empty string';
    if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) return 'variables must be a JSON object';
    if (operationName != null && typeof operationName !== 'string') return 'operationName must be a string';
    return { query, variables: (variables ?? null) as Record<string, unknown> | null, operationName: operationName ?? null };
  }

  /**
   * GraphQL over SSE, distinct connections mode (the protocol graphql-sse's client speaks): one
   * subscription per response. The engine is the same as for graphql-ws (authorisation, shared
   * consumers and executions, frames serialized once) and so are the limits: the response's
   * unsent bytes are bounded like a socket's (over the limit the stream is cut, and the client
   * resubscribes `after` its last cursor), a token that expires ends the stream with an
   * UNAUTHENTICATED error, and at shutdown streams end without `complete`, so clients reconnect.
   * graphql-sse's own handler is not used: it queues results without bound while a client reads
   * slowly, and would serialize every result again for each subscriber.
   */
  async function serveSse(request: IncomingMessage & { body?: unknown }, response: ServerResponse): Promise<void> {
    // The client may leave while its token is verified: nothing may be opened for it then.
    let gone = false;
    const leftEarly = () => (gone = true);
    response.once('close', leftEarly);
    if (closing) return refuse(response, 503, 'SERVICE_UNAVAILABLE', 'the gateway is shutting down; retry');
    if (!(request.headers.accept ?? '').includes('text/event-stream')) {
      return refuse(response, 406, 'BAD_USER_INPUT', 'subscriptions over SSE need "Accept: text/event-stream"');
    }
    let verified: VerifiedBearer;
    try {
      verified = await verify(request.headers.authorization);
    } catch (failure) {
      const message = failure instanceof AuthenticationError ? `Unauthenticated: ${failure.message}` : 'Unauthenticated';
      return refuse(response, 401, 'UNAUTHENTICATED', message, { 'www-authenticate': 'Bearer' });
    }
    const payload = sseOperation(request);
    if (typeof payload === 'string') return refuse(response, 400, 'BAD_USER_INPUT', payload);
    if (gone) return;
    if (closing) return refuse(response, 503, 'SERVICE_UNAVAILABLE', 'the gateway is shutting down; retry');
    response.off('close', leftEarly);

    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // Proxies such as nginx would otherwise hold the events back.
      'x-accel-buffering': 'no',
    });
    response.write(sseFrame.ping);
    sseStreams.add(response);
    const connection = openConnection(new SsePeer(response), response, verified.identity, verified.expiresAt);
    response.once('close', () => {
      sseStreams.delete(response);
      dropConnection(connection);
    });
    const finish = (errors?: readonly GraphQLError[]) => {
      if (response.writableEnded || response.destroyed) return;
      const last = errors ? sseFrame.next(JSON.stringify({ errors: errors.map((e) => e.toJSON()) })) : '';
      response.end(last + sseFrame.complete);
    };

    connection.active++;
    let plan: Plan | readonly GraphQLError[];
    try {
      plan = await prepare(connection, '', payload);
    } catch (failure) {
      log.error({ err: failure }, 'could not prepare a subscription');
      plan = [error('INTERNAL_SERVER_ERROR', 'Internal server error')];
    }
    if (isErrors(plan)) {
      connection.active--;
      return finish(plan);
    }
    const subscription = await new Subscription(plan).start();
    try {
      await subscription.next();
      // Ended by the client leaving, by a cut-off or an expired token (the stream is over then),
      // by the binding's `complete` condition, or by shutdown (see close: no `complete` then).
      if (!closing) finish();
    } catch (failure) {
      finish([failure instanceof GraphQLError ? failure : error('INTERNAL_SERVER_ERROR', 'Internal server error')]);
    }
  }

  const metrics = createSubscriptionMetrics(stats);

  return {
    serveSse,
    setSchema(apiSchema, supergraphSdl) {
      served = { schema: apiSchema, bindings: readBindings(supergraphSdl, apiSchema), compiled: new LRUCache({ max: COMPILED_DOCUMENTS }), executions: new Map() };
      log.info({ fields: [...served.bindings.keys()] }, 'serving subscriptions');
    },
    get fields() {
      return [...(served?.bindings.keys() ?? [])];
    },
    metrics,
    stats,
    async close() {
      if (closing) return;
      closing = true;
      if (ssePings) clearInterval(ssePings);
      // Without `complete`: to an SSE client, the stream broke, and it subscribes again (elsewhere).
      for (const response of sseStreams) response.end();
      // graphql-ws closes every socket with 1001 "Going away" and waits for them to go.
      const disposed = Promise.resolve(graphqlWs.dispose()).catch((failure: unknown) => log.warn({ err: failure }, 'graphql-ws did not stop cleanly'));
      const grace = new Promise((resolve) => setTimeout(resolve, closeGraceMs).unref());
      await Promise.race([disposed, grace]);
      for (const socket of wss.clients) socket.terminate();
      for (const connection of [...connections.values()]) dropConnection(connection);
      for (const response of sseStreams) response.end();
      await hub.close();
    },
  };
}
