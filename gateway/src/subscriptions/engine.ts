import { randomUUID } from 'node:crypto';
import { StreamReplay, type Identity, type Logger } from '@fleetgraph/kit/core';
import type { SubscribePayload } from 'graphql-ws';
import { createAuthoriser, type AuthorizeResult } from './authoriser.js';
import { AFTER_ARGUMENT, readBindings, subjectFor, type FieldBinding } from './binding.js';
import { createCompiler, type Compiler } from './compiler.js';
import { parseCursor } from './cursor.js';
import { codedError, isErrors } from './errors.js';
import { executeSync, type GraphQLError, type GraphQLSchema } from './graphql.js';
import { createHub, type Execution, type StartFrom } from './hub.js';
import type { SubscriptionStats } from './metrics.js';
import type { Peer } from './peers.js';
import type { EventSource } from './source.js';
import { Subscription, type Connection, type Plan, type Served, type SubscriptionHost } from './subscription.js';

/** What the engine is made of, with every default already applied (see SubscriptionServerOptions). */
export interface SubscriptionEngineOptions {
  source: EventSource;
  /** Runs a query through the gateway's federated query path as `identity`. */
  authorize(query: string, variables: Record<string, unknown>, identity: Identity): Promise<AuthorizeResult>;
  log: Logger;
  /** Bytes a connection may have waiting in its send buffer before it is closed as a slow consumer. */
  bufferLimitBytes: number;
  /** How long a closed slow consumer gets to finish the close handshake. */
  closeGraceMs: number;
  /** See HubOptions.patternConsumerAt. */
  patternConsumerAt?: number;
  /** How long an authorisation query may take before the subscribe is refused as SERVICE_UNAVAILABLE. */
  authorizationTimeoutMs: number;
  /** How long a granted authorisation is remembered per caller and entity (see Authoriser.authorise). */
  authorizationMemoryMs: number;
  /**
   * The document a subscribe runs (trusted documents): its own or one found by its persisted-query
   * hash, or the error refusing it. @default its own
   */
  resolveDocument?(payload: SubscribePayload): string | GraphQLError;
}

/**
 * The subscription engine, which knows no transport (as graphql-ws's `makeServer` knows no socket
 * library): it holds the connections the transports open with a Peer to write to, prepares each
 * subscription (its document compiled, its subject, where its replay starts, its authorisation,
 * its execution key), starts it on the hub with the execution it shares with its group, and
 * closes everything at shutdown. The graphql-ws transport (transport.ts) and the SSE one (sse.ts)
 * map their protocols onto it.
 */
export interface SubscriptionEngine {
  /** True once close() has begun: transports accept no more connections. */
  readonly closing: boolean;
  /**
   * Serves the Subscription fields bound by `@jetstream` in this supergraph, validated against its
   * API schema. Subscriptions already running keep the binding they started with.
   * @throws StreamBindingError listing every problem of the bindings
   */
  setSchema(apiSchema: GraphQLSchema, supergraphSdl: string): void;
  /** The Subscription fields served. */
  readonly fields: readonly string[];
  /** The engine's numbers, as `/metrics` reports them. */
  stats(): SubscriptionStats;
  /** Registers a connection whose caller is verified, held by `key`; it expires (see Peer.expire) at `expiresAt`. */
  openConnection(peer: Peer, key: object, identity: Identity, expiresAt: Date | undefined): Connection;
  /** The open connection held by `key`. */
  connection(key: object): Connection | undefined;
  /** Forgets a connection and ends its subscriptions (idempotent). */
  dropConnection(connection: Connection): void;
  /**
   * Ends every connection of a caller (by its subject, e.g. `apikey:<id>`) whose credentials were
   * revoked, as an expired token's connection ends, with `reason`. @returns how many
   */
  endConnectionsOf(userId: string, reason: string): number;
  /**
   * Prepares a subscription of the connection, counted in its `active` ones unless it answers
   * errors: the errors that refuse it, for the transport to send (or a Plan to `subscribe` with).
   */
  prepare(connection: Connection, id: string, payload: SubscribePayload): Promise<Plan | readonly GraphQLError[]>;
  /** Starts a prepared subscription; it has ended already when the resolved one's `next()` settles at once. */
  subscribe(plan: Plan): Promise<Subscription>;
  /**
   * Refuses new connections from now on, waits for `drain` (the transports' goodbyes), then drops
   * every connection and removes every consumer. Called again, resolves at once.
   */
  close(drain: () => Promise<void>): Promise<void>;
}

/** The schema served, and what is kept per schema: its bindings, compiled documents and shared executions. */
interface ServedSchema extends Served {
  bindings: Map<string, FieldBinding>;
  compiler: Compiler;
}

/** Creates the transport-free subscription engine (see SubscriptionEngine). */
export function createSubscriptionEngine(options: SubscriptionEngineOptions): SubscriptionEngine {
  const { log, source, closeGraceMs } = options;
  const hub = createHub(source, log, { patternConsumerAt: options.patternConsumerAt });
  const authoriser = createAuthoriser({
    authorize: options.authorize,
    log,
    timeoutMs: options.authorizationTimeoutMs,
    rememberMs: options.authorizationMemoryMs,
  });
  /** Open connections, by socket or SSE response. */
  const connections = new Map<object, Connection>();
  let served: ServedSchema | undefined;
  let closing = false;
  let slowConsumers = 0;

  /** What every subscription shares: the hub, the counters it keeps, and the executions of its group. */
  const host: SubscriptionHost = {
    hub,
    log,
    bufferLimit: options.bufferLimitBytes,
    subscriptions: 0,
    delivered: 0,
    maxBufferedBytes: 0,
    acquireExecution,
    releaseExecution,
    cutOff,
  };

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

  /**
   * Closes the connection of a client that stopped reading, and makes sure it goes even if it never
   * answers the close.
   */
  function cutOff(connection: Connection) {
    if (connection.cut) return;
    connection.cut = true;
    slowConsumers++;
    log.warn(
      { user: connection.identity.userId, buffered: connection.peer.buffered },
      'closing a slow subscription consumer',
    );
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

  async function preparePlan(
    connection: Connection,
    id: string,
    payload: SubscribePayload,
  ): Promise<Plan | readonly GraphQLError[]> {
    const current = served;
    if (!current) return [codedError('SERVICE_UNAVAILABLE', 'subscriptions are not served yet; retry')];
    const document = options.resolveDocument?.(payload) ?? payload.query;
    if (typeof document !== 'string') return [document];
    if (document !== payload.query) payload = { ...payload, query: document };
    const compiled = current.compiler.compile(payload);
    if (isErrors(compiled)) return compiled;
    const { name, binding } = compiled;
    const args = current.compiler.argumentsOf(compiled, payload);
    if (isErrors(args)) return args;
    const { identity } = connection;
    let subject: string;
    try {
      subject = subjectFor(binding, identity.tenantId, args);
    } catch (tokenError) {
      return [codedError('BAD_USER_INPUT', (tokenError as Error).message)];
    }

    let from: StartFrom = { kind: 'now' };
    if (binding.replay === StreamReplay.LAST) from = { kind: 'last' };
    else if (binding.replay === StreamReplay.CURSOR && args[AFTER_ARGUMENT] != null) {
      const seq = parseCursor(String(args[AFTER_ARGUMENT]));
      if (seq === undefined) return [codedError('BAD_USER_INPUT', `after is not a cursor of Subscription.${name}`)];
      from = { kind: 'after', seq };
    }

    // Copied: randomUUID() returns a rope of its pieces (some 350 bytes), kept as long as the subscription.
    const requestId = Buffer.from(randomUUID(), 'latin1').toString('latin1');
    if (binding.project !== undefined) {
      // A project named by the arguments must be readable; each event's project is checked on delivery.
      const named = args[binding.project];
      if (named != null && !identity.canRead(String(named))) return [codedError('BAD_USER_INPUT', 'project not found')];
    }
    if (binding.authorize) {
      const denied = await authoriser.authorise(
        connection,
        { ...binding, authorize: binding.authorize },
        args,
        identity,
        requestId,
      );
      if (denied) return [denied];
    }

    // The result depends only on the event, the document and the variables its selection uses:
    // subscribers agreeing on those (within a tenant, which the subject holds too) share one execution.
    // The document's key is computed once per document compiled, not per subscribe.
    const used = compiled.selectionVariables.map((v) => payload.variables?.[v] ?? null);
    const executionKey = JSON.stringify([identity.tenantId, compiled.documentKey, used]);
    const { project } = binding;
    const accepts =
      project === undefined
        ? undefined
        : (event: Record<string, unknown>) => typeof event[project] === 'string' && identity.canRead(event[project]);
    return { served: current, compiled, connection, id, payload, subject, from, executionKey, requestId, accepts };
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
          return JSON.stringify(
            executeSync({ schema, document, rootValue: { [name]: event }, variableValues, operationName }),
          );
        } catch (failure) {
          log.error({ err: failure, subject }, 'could not execute a subscription selection');
          return JSON.stringify({
            errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
          });
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

  return {
    get closing() {
      return closing;
    },
    setSchema(apiSchema, supergraphSdl) {
      const bindings = readBindings(supergraphSdl, apiSchema);
      served = { schema: apiSchema, bindings, compiler: createCompiler(apiSchema, bindings), executions: new Map() };
      log.info({ fields: [...served.bindings.keys()] }, 'serving subscriptions');
    },
    get fields() {
      return [...(served?.bindings.keys() ?? [])];
    },
    stats() {
      const h = hub.stats();
      return {
        connections: connections.size,
        subscriptions: host.subscriptions,
        consumers: source.consumers,
        delivered: host.delivered,
        executions: h.executions,
        messages: h.messages,
        authorisations: authoriser.run,
        authorisationsRemembered: authoriser.remembered,
        slowConsumers,
        failed: h.failed,
        malformed: h.malformed,
        maxBufferedBytes: host.maxBufferedBytes,
      };
    },
    openConnection,
    connection: (key) => connections.get(key),
    dropConnection,
    endConnectionsOf(userId, reason) {
      let ended = 0;
      for (const connection of connections.values()) {
        if (connection.identity.userId !== userId) continue;
        connection.peer.expire(reason);
        ended++;
      }
      return ended;
    },
    async prepare(connection, id, payload) {
      connection.active++;
      let prepared: Plan | readonly GraphQLError[];
      try {
        prepared = await preparePlan(connection, id, payload);
      } catch (failure) {
        log.error({ err: failure }, 'could not prepare a subscription');
        prepared = [codedError('INTERNAL_SERVER_ERROR', 'Internal server error')];
      }
      if (isErrors(prepared)) connection.active--;
      return prepared;
    },
    subscribe: (prepared) => new Subscription(prepared, host).start(),
    async close(drain) {
      if (closing) return;
      closing = true;
      await drain();
      for (const connection of [...connections.values()]) dropConnection(connection);
      await hub.close();
    },
  };
}
