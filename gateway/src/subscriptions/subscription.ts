import type { Identity, Logger } from '@fleetgraph/kit/core';
import type { SubscribePayload } from 'graphql-ws';
import type { Compiled } from './compiler.js';
import { codedError } from './errors.js';
import type { GraphQLError, GraphQLSchema } from './graphql.js';
import { CursorAheadError, type Execution, type Hub, type Listener, type StartFrom, type Watch } from './hub.js';
import type { Peer } from './peers.js';
import { EventSourceUnavailableError } from './source.js';

/** A client connection (a graphql-ws socket, or one SSE response) and the subscriptions it holds. */
export interface Connection {
  peer: Peer;
  /** What the engine holds it by: its socket, or its SSE response. */
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
export interface Running {
  end(): void;
}

/**
 * One execution of a selection over each event, shared by the subscriptions of a subject with the
 * same execution key.
 */
export interface SharedExecution {
  execution: Execution;
  subscriptions: number;
}

/** The API schema a subscription was prepared against, and the executions shared under it. */
export interface Served {
  schema: GraphQLSchema;
  /**
   * The executions of the running subscriptions, by subject and execution key (see
   * SubscriptionHost.acquireExecution).
   */
  executions: Map<string, SharedExecution>;
}

/** What the engine prepared for a subscription (the transports hand it back to start it). */
export interface Plan {
  served: Served;
  compiled: Compiled;
  connection: Connection;
  /** The subscription's id on its connection (graphql-ws's; '' over SSE). */
  id: string;
  payload: SubscribePayload;
  subject: string;
  from: StartFrom;
  executionKey: string;
  requestId: string;
  /** Whether an event reaches this subscriber (a binding with `project`: whether it may read the event's project). */
  accepts?: (payload: Record<string, unknown>) => boolean;
}

/** What a subscription needs of its engine; the engine reports the counters in its stats. */
export interface SubscriptionHost {
  readonly hub: Hub;
  readonly log: Logger;
  /** Bytes a connection may have waiting in its send buffer before it is cut off. */
  readonly bufferLimit: number;
  /** Subscriptions started and not yet ended. */
  subscriptions: number;
  /** `next` frames sent. */
  delivered: number;
  /** The most bytes seen waiting in one connection's send buffer right after a send. */
  maxBufferedBytes: number;
  /** The shared execution of a plan's group (subject and execution key); released by releaseExecution. */
  acquireExecution(plan: Plan): Execution;
  releaseExecution(plan: Plan): void;
  /** Closes the connection of a client that stopped reading. */
  cutOff(connection: Connection): void;
}

const ignore = () => {};

/**
 * A started subscription, in every role it plays: the hub's listener (frames go straight to the
 * peer: one serialized result per execution, shared by every subscriber of the execution), the
 * iterator graphql-ws drives (it never yields: it ends, and graphql-ws sends `complete`, or
 * fails, and graphql-ws sends `error`; the SSE transport awaits `next()` alike), and what its
 * connection ends it by. One object rather than a closure per role: with thousands of idle
 * subscriptions, closures were much of their memory.
 */
export class Subscription implements Running, Listener, AsyncIterableIterator<never> {
  private ended = false;
  private counted = false;
  private watch: Watch | undefined;
  private readonly finished: Promise<IteratorResult<never>>;
  private settle!: (result: IteratorResult<never>) => void;
  private fail!: (reason: unknown) => void;
  /** The `next` frame up to its payload, with this subscription's id, and after it. */
  private readonly prefix: string;
  private readonly suffix: string;
  /** The execution the subscription shares with its group (subject and execution key). */
  readonly execution: Execution;

  constructor(
    private readonly plan: Plan,
    private readonly host: SubscriptionHost,
  ) {
    this.finished = new Promise<IteratorResult<never>>((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
    });
    [this.prefix, this.suffix] = plan.connection.peer.framing(plan.id);
    this.execution = host.acquireExecution(plan);
    plan.connection.running.add(this);
  }

  /** Starts watching the plan's subject; resolves once it watches, or has ended (with its failure, if any). */
  async start(): Promise<this> {
    const { plan, host } = this;
    const { connection } = plan;
    if (!connection.live) {
      this.end();
      return this;
    }
    try {
      const watch = await host.hub.watch({
        stream: plan.compiled.binding.stream,
        subject: plan.subject,
        pattern: plan.compiled.binding.pattern,
        from: plan.from,
        execution: this.execution,
        listener: this,
        accepts: plan.accepts,
      });
      this.watch = watch;
      // Ended (the connection dropped, or LAST delivered a final state) while the watch was starting.
      if (this.ended) watch.close();
      else {
        this.counted = true;
        host.subscriptions++;
      }
    } catch (failure) {
      // The client's mistake: a cursor no event of the subject has (see CursorAheadError).
      if (failure instanceof CursorAheadError) {
        this.end(
          codedError(
            'BAD_USER_INPUT',
            `after is not a cursor of an event of Subscription.${plan.compiled.name}: it is past the last one`,
          ),
        );
        return this;
      }
      // NATS away: expected during an outage, and said so to the client (retry once it is back).
      if (failure instanceof EventSourceUnavailableError) {
        host.log.warn(
          { requestId: plan.requestId, subject: plan.subject },
          'subscription refused: NATS is unreachable',
        );
        this.end(codedError('SERVICE_UNAVAILABLE', failure.message));
        return this;
      }
      host.log.error(
        { err: failure, requestId: plan.requestId, subject: plan.subject },
        'subscription could not start',
      );
      this.end(codedError('SERVICE_UNAVAILABLE', 'the subscription could not start; retry'));
    }
    return this;
  }

  /** Ends the subscription (idempotent); with a failure, graphql-ws sends it as an `error`. */
  end(failure?: GraphQLError): void {
    if (this.ended) return;
    this.ended = true;
    const { connection } = this.plan;
    this.host.releaseExecution(this.plan);
    if (this.counted) this.host.subscriptions--;
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
  next(result?: string): Promise<IteratorResult<never>> | undefined {
    if (result === undefined) return this.finished;
    const { host } = this;
    const { peer } = this.plan.connection;
    if (this.ended || !peer.writable) return;
    if (peer.buffered > host.bufferLimit) {
      host.cutOff(this.plan.connection);
      return;
    }
    peer.send(this.prefix + result + this.suffix);
    host.delivered++;
    const buffered = peer.buffered;
    if (buffered > host.maxBufferedBytes) host.maxBufferedBytes = buffered;
  }

  /** As the hub's listener: the binding's `complete` condition held. */
  complete(): void {
    this.end();
  }

  /** As the hub's listener: the event source failed. */
  error(failure: Error): void {
    this.host.log.warn(
      { err: failure, requestId: this.plan.requestId, subject: this.plan.subject },
      'subscription event source failed',
    );
    this.end(codedError('SERVICE_UNAVAILABLE', 'the event stream failed; subscribe again (with your last cursor)'));
  }

  /** As graphql-ws's iterator: the client completed the subscription, or its connection closed. */
  async return(): Promise<IteratorResult<never>> {
    this.end();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
