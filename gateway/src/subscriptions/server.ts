import { createHash, randomUUID } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { AuthenticationError, StreamReplay, verifyBearer, type ErrorCode, type Identity, type Logger } from '@fleetgraph/kit';
import { CloseCode, type SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { Registry } from 'prom-client';
import { WebSocket, WebSocketServer } from 'ws';
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
  type GraphQLSchema,
  type OperationDefinitionNode,
} from './graphql.js';
import { createHub, type StartFrom, type Watch } from './hub.js';
import { createSubscriptionMetrics, type SubscriptionStats } from './metrics.js';
import type { EventSource } from './source.js';

/** How the gateway closes a subscription socket, besides graphql-ws's own protocol codes. */
export const SubscriptionCloseCode = {
  /** graphql-ws's Forbidden: the bearer token is missing, invalid, or expired (also mid-connection). */
  Forbidden: CloseCode.Forbidden,
  /** The client stopped reading and its send buffer filled: reconnect and resume with the last cursor. */
  SlowConsumer: 1013,
  /** The gateway is shutting down: reconnect (to another replica) and resume with the last cursor. */
  GoingAway: 1001,
} as const;

/** The close reason sent with `SlowConsumer`. */
export const SLOW_CONSUMER_REASON = 'slow consumer: resume with your cursor';

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
  jwtSecret: string;
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
  /** Closes every socket with 1001 going away and removes every consumer. */
  close(): Promise<void>;
}

interface Served {
  schema: GraphQLSchema;
  bindings: Map<string, FieldBinding>;
}

interface Connection {
  socket: WebSocket;
  identity: Identity;
  expiry?: NodeJS.Timeout;
  /** Subscriptions being prepared (authorisation, replay start) or running. */
  active: number;
  running: Set<Running>;
  cut: boolean;
}

/** A running subscription: the iterator graphql-ws drives (it never yields: frames are sent directly). */
interface Running {
  end(): void;
}

/** What onSubscribe prepared, handed to `subscribe` as the execution context. */
interface Plan {
  schema: GraphQLSchema;
  document: DocumentNode;
  connection: Connection;
  id: string;
  binding: FieldBinding;
  subject: string;
  from: StartFrom;
  executionKey: string;
  execute(payload: Record<string, unknown>): string;
  requestId: string;
}

function error(code: ErrorCode, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

/** The single root field of a subscription operation, through fragments if need be. */
function rootField(operation: OperationDefinitionNode, document: DocumentNode): FieldNode | undefined {
  const fragments = new Map(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
  const stack = [...operation.selectionSet.selections];
  while (stack.length > 0) {
    const selection = stack.shift()!;
    if (selection.kind === Kind.FIELD) return selection;
    if (selection.kind === Kind.INLINE_FRAGMENT) stack.unshift(...selection.selectionSet.selections);
    else stack.unshift(...(fragments.get(selection.name.value)?.selectionSet.selections ?? []));
  }
  return undefined;
}

/** Variables whose values can change the result of executing the root field's selection (not its arguments). */
function selectionVariables(field: FieldNode, document: DocumentNode): string[] {
  const fragments = new Map(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
  const names = new Set<string>();
  const seen = new Set<string>();
  const walk = (node: Parameters<typeof visit>[0]) =>
    visit(node, {
      Variable: (v) => void names.add(v.name.value),
      FragmentSpread: (spread) => {
        const fragment = fragments.get(spread.name.value);
        if (fragment && !seen.has(fragment.name.value)) {
          seen.add(fragment.name.value);
          walk(fragment.selectionSet);
        }
      },
    });
  if (field.selectionSet) walk(field.selectionSet);
  for (const directive of field.directives ?? []) walk(directive);
  return [...names].sort();
}

/** Creates the subscription engine and serves graphql-ws on the HTTP server's path. */
export function createSubscriptionServer(options: SubscriptionServerOptions): SubscriptionServer {
  const { log, source } = options;
  const bufferLimit = options.bufferLimitBytes ?? 1024 * 1024;
  const maxPerConnection = options.maxSubscriptionsPerConnection ?? 100;
  const closeGraceMs = options.closeGraceMs ?? 5_000;
  const hub = createHub(source, log);
  const connections = new Map<WebSocket, Connection>();
  let served: Served | undefined;
  let closing = false;
  let subscriptions = 0;
  let delivered = 0;
  let slowConsumers = 0;
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
      slowConsumers,
      maxBufferedBytes,
    };
  };

  const wss = new WebSocketServer({ server: options.server, path: options.path ?? '/graphql', maxPayload: options.maxMessageBytes ?? 64 * 1024 });

  function dropConnection(connection: Connection) {
    if (connections.get(connection.socket) !== connection) return;
    connections.delete(connection.socket);
    clearTimeout(connection.expiry);
    for (const running of [...connection.running]) running.end();
  }

  /** Closes a socket that stopped reading, and makes sure it goes even if it never answers the close. */
  function cutOff(connection: Connection) {
    if (connection.cut) return;
    connection.cut = true;
    slowConsumers++;
    log.warn({ user: connection.identity.userId, buffered: connection.socket.bufferedAmount }, 'closing a slow subscription consumer');
    for (const running of [...connection.running]) running.end();
    connection.socket.close(SubscriptionCloseCode.SlowConsumer, SLOW_CONSUMER_REASON);
    setTimeout(() => connection.socket.terminate(), closeGraceMs).unref();
  }

  function armExpiry(connection: Connection, expiresAt: Date) {
    const wait = expiresAt.getTime() - Date.now();
    if (wait <= 0) {
      connection.socket.close(SubscriptionCloseCode.Forbidden, 'Forbidden: token expired');
      return;
    }
    // setTimeout takes at most 2^31 - 1 ms: re-arm for longer-lived tokens.
    connection.expiry = setTimeout(() => armExpiry(connection, expiresAt), Math.min(wait, 2 ** 31 - 1));
    connection.expiry.unref();
  }

  async function prepare(connection: Connection, id: string, payload: SubscribePayload): Promise<Plan | readonly GraphQLError[]> {
    const current = served;
    if (!current) return [error('SERVICE_UNAVAILABLE', 'subscriptions are not served yet; retry')];
    let document: DocumentNode;
    try {
      document = parse(payload.query);
    } catch (syntaxError) {
      return [syntaxError as GraphQLError];
    }
    const invalid = validate(current.schema, document);
    if (invalid.length > 0) return invalid.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }));
    const operation = getOperationAST(document, payload.operationName);
    if (!operation) return [error('GRAPHQL_VALIDATION_FAILED', 'the document does not name one operation to run')];
    if (operation.operation !== 'subscription') {
      return [error('BAD_USER_INPUT', 'only subscriptions are served over WebSocket: send queries and mutations with POST /graphql')];
    }
    const field = rootField(operation, document)!;
    const name = field.name.value;
    const binding = current.bindings.get(name);
    const definition = current.schema.getSubscriptionType()?.getFields()[name];
    if (!binding || !definition) return [error('BAD_USER_INPUT', `Subscription.${name} is not served`)];

    const variables = getVariableValues(current.schema, operation.variableDefinitions ?? [], payload.variables ?? {});
    if (variables.errors) return variables.errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'BAD_USER_INPUT' } }));
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

    const requestId = randomUUID();
    const denied = await authorise(binding, args, identity, requestId);
    if (denied) return [denied];

    // The result depends only on the event, the document and the variables its selection uses:
    // subscribers agreeing on those (within a tenant, which the subject holds too) share one execution.
    const used = Object.fromEntries(selectionVariables(field, document).map((v) => [v, payload.variables?.[v] ?? null]));
    const executionKey = createHash('sha256')
      .update(JSON.stringify([identity.tenantId, payload.operationName ?? null, payload.query, used]))
      .digest('base64url');
    const schema = current.schema;
    const execute = (event: Record<string, unknown>) => {
      try {
        return JSON.stringify(executeSync({ schema, document, rootValue: { [name]: event }, variableValues: payload.variables ?? {}, operationName: payload.operationName ?? undefined }));
      } catch (failure) {
        log.error({ err: failure, subject }, 'could not execute a subscription selection');
        return JSON.stringify({ errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      }
    };
    return { schema, document, connection, id, binding, subject, from, executionKey, execute, requestId };
  }

  /** Refuses a subscription whose entity the caller cannot read, exactly like an unknown one. */
  async function authorise(binding: FieldBinding, args: Record<string, unknown>, identity: Identity, requestId: string): Promise<GraphQLError | undefined> {
    const variables = Object.fromEntries(binding.authorize.variables.map((v) => [v, args[v] ?? null]));
    let result: AuthorizeResult;
    try {
      result = await options.authorize(binding.authorize.query, variables, identity);
    } catch (failure) {
      log.error({ err: failure, requestId, field: binding.field }, 'subscription authorisation failed');
      return error('SERVICE_UNAVAILABLE', 'the subscription could not be authorised; retry');
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
   * Starts a prepared subscription. Frames go straight to the socket (one serialized result per
   * execution, shared by every subscriber of the execution); the iterator graphql-ws drives never
   * yields: it ends (graphql-ws then sends `complete`) or fails (graphql-ws sends `error`).
   */
  async function start(plan: Plan): Promise<AsyncIterableIterator<never>> {
    const { connection, id } = plan;
    const { socket } = connection;
    let ended = false;
    let counted = false;
    let watch: Watch | undefined;
    let settle!: (result: IteratorResult<never>) => void;
    let reject!: (reason: unknown) => void;
    const finished = new Promise<IteratorResult<never>>((resolve, fail) => {
      settle = resolve;
      reject = fail;
    });
    // graphql-ws may never call next() (the client left first): a failure must not go unhandled.
    finished.catch(() => {});
    const finish = (failure?: GraphQLError) => {
      if (ended) return;
      ended = true;
      if (counted) subscriptions--;
      connection.running.delete(running);
      connection.active--;
      watch?.close();
      if (failure) reject(failure);
      else settle({ done: true, value: undefined });
    };
    const running: Running = { end: () => finish() };
    connection.running.add(running);
    const iterator: AsyncIterableIterator<never> = {
      next: () => finished,
      return: async () => {
        finish();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    if (connections.get(socket) !== connection) {
      finish();
      return iterator;
    }
    const prefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
    try {
      watch = await hub.watch({
        stream: plan.binding.stream,
        subject: plan.subject,
        from: plan.from,
        execution: { key: plan.executionKey, execute: plan.execute, cursorField: plan.binding.cursorField, isComplete: plan.binding.complete },
        listener: {
          next: (result) => {
            if (ended || socket.readyState !== WebSocket.OPEN) return;
            if (socket.bufferedAmount > bufferLimit) return cutOff(connection);
            socket.send(prefix + result + '}');
            delivered++;
            if (socket.bufferedAmount > maxBufferedBytes) maxBufferedBytes = socket.bufferedAmount;
          },
          complete: () => finish(),
          error: (failure) => {
            log.warn({ err: failure, requestId: plan.requestId, subject: plan.subject }, 'subscription event source failed');
            finish(error('SERVICE_UNAVAILABLE', 'the event stream failed; subscribe again (with your last cursor)'));
          },
        },
      });
      // Ended (the connection dropped, or LAST delivered a final state) while the watch was starting.
      if (ended) watch.close();
      else {
        counted = true;
        subscriptions++;
      }
    } catch (failure) {
      log.error({ err: failure, requestId: plan.requestId, subject: plan.subject }, 'subscription could not start');
      finish(error('SERVICE_UNAVAILABLE', 'the subscription could not start; retry'));
    }
    return iterator;
  }

  const graphqlWs = useServer<{ authorization?: unknown }>(
    {
      isProd: options.production ?? false,
      onConnect: async (ctx) => {
        const { socket } = ctx.extra;
        if (closing) {
          socket.close(SubscriptionCloseCode.GoingAway, 'going away');
          return false;
        }
        const authorization = ctx.connectionParams?.authorization;
        let verified: Awaited<ReturnType<typeof verifyBearer>>;
        try {
          verified = await verifyBearer(typeof authorization === 'string' ? authorization : undefined, options.jwtSecret);
        } catch (failure) {
          socket.close(SubscriptionCloseCode.Forbidden, failure instanceof AuthenticationError ? `Forbidden: ${failure.message}` : 'Forbidden');
          return false;
        }
        if (socket.readyState !== WebSocket.OPEN) return false;
        const connection: Connection = { socket, identity: verified.identity, active: 0, running: new Set(), cut: false };
        connections.set(socket, connection);
        socket.once('close', () => dropConnection(connection));
        if (verified.expiresAt) armExpiry(connection, verified.expiresAt);
        return true;
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
        if (Array.isArray(plan)) {
          connection.active--;
          return plan as readonly GraphQLError[];
        }
        const prepared = plan as Plan;
        return { schema: prepared.schema, document: prepared.document, operationName: payload.operationName, contextValue: prepared };
      },
      subscribe: (args) => start(args.contextValue as Plan),
    },
    wss,
    options.keepAliveMs ?? 12_000,
  );

  const metrics = createSubscriptionMetrics(stats);

  return {
    setSchema(apiSchema, supergraphSdl) {
      served = { schema: apiSchema, bindings: readBindings(supergraphSdl, apiSchema) };
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
      // graphql-ws closes every socket with 1001 "Going away" and waits for them to go.
      const disposed = Promise.resolve(graphqlWs.dispose()).catch((failure: unknown) => log.warn({ err: failure }, 'graphql-ws did not stop cleanly'));
      const grace = new Promise((resolve) => setTimeout(resolve, closeGraceMs).unref());
      await Promise.race([disposed, grace]);
      for (const socket of wss.clients) socket.terminate();
      for (const connection of [...connections.values()]) dropConnection(connection);
      await hub.close();
    },
  };
}
