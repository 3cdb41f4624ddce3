import { randomBytes } from 'node:crypto';
import { BusError, type Bus } from '@fleetgraph/kit';
import {
  collectLogs,
  logStreamControl,
  logStreamData,
  type CollectLogsRequest,
  type LogStreamMessage,
} from '@fleetgraph/schema';
import type { AgentStream, AgentStreamOptions, StreamItem } from '../app/ports.js';
import { CollectionError } from '../domain/collection-error.js';

export type { AgentStream, AgentStreamOptions, StreamItem };

/**
 * The logs service's end of a collection (see schema/src/contracts/logs.ts): subscribes to the
 * collection's data subject, asks the agent to start, then hands the messages out in order while
 * granting the agent credit for more only as they are consumed, so that at most `window`
 * messages ever wait here. Gaps, malformed messages, overruns of the window, silence longer than
 * `idleTimeoutMs` and an `error` from the agent all end the stream with a CollectionError.
 */
class Receiver implements AgentStream {
  nodes = 0;
  private readonly queue: LogStreamMessage[] = [];
  private failure: CollectionError | null = null;
  private wake: (() => void) | null = null;
  private expected = 1;
  private granted: number;
  private closed = false;
  private readonly tokens: { clusterId: string; streamId: string };
  private readonly subscription: { unsubscribe(): void };
  private readonly onAbort = () =>
    this.fail(
      this.options.signal?.reason instanceof CollectionError
        ? this.options.signal.reason
        : new CollectionError('STOPPED', 'the collection was stopped'),
    );

  constructor(
    private readonly bus: Bus,
    readonly clusterId: string,
    readonly streamId: string,
    private readonly options: AgentStreamOptions,
  ) {
    this.granted = options.window;
    this.tokens = { clusterId, streamId };
    this.subscription = bus.listen(logStreamData, {
      tokens: this.tokens,
      handle: (message) => this.receive(message),
      malformed: (error) => this.broken(`the agent sent a malformed message (${error})`),
      error: (error) => this.broken(`the log stream failed: ${error.message}`),
    });
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (options.signal?.aborted) this.onAbort();
  }

  private receive(message: LogStreamMessage): void {
    if (this.failure || this.closed) return;
    if (message.seq !== this.expected) {
      this.broken(`log data was lost in transit: expected message ${this.expected}, got ${message.seq}`);
      return;
    }
    if (message.type !== 'error' && message.seq > this.granted) {
      this.broken(`the agent sent past its flow-control window (${this.granted})`);
      return;
    }
    this.expected++;
    this.queue.push(message);
    this.notify();
  }

  /** The stream broke (a message lost, malformed or beyond the window): it ends, unless it ended already. */
  private broken(message: string): void {
    if (this.failure || this.closed) return;
    this.fail(new CollectionError('STREAM_BROKEN', message));
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private fail(error: CollectionError): void {
    this.failure ??= error;
    this.notify();
  }

  /** Lets the agent send a full window beyond what was consumed, once half of it is used. */
  private grant(consumed: number): void {
    if (this.closed || this.granted - consumed > this.options.window / 2) return;
    this.granted = consumed + this.options.window;
    if (!this.bus.closed)
      this.bus.send(logStreamControl, { type: 'credit', upTo: this.granted }, { tokens: this.tokens });
  }

  private waitForMessage(): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(false);
      }, this.options.idleTimeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamItem> {
    for (;;) {
      if (this.failure) throw this.failure;
      const message = this.queue.shift();
      if (message) {
        if (message.type === 'error') throw new CollectionError('AGENT_FAILED', message.message);
        yield message;
        if (message.type === 'end') return;
        // Only now, when the consumer asks for more, has it taken the message in.
        this.grant(message.seq);
        continue;
      }
      if (!(await this.waitForMessage()) && !this.failure && this.queue.length === 0) {
        this.fail(
          new CollectionError(
            'STREAM_TIMEOUT',
            `the agent stopped sending logs: nothing for ${Math.round(this.options.idleTimeoutMs / 1000)} s`,
          ),
        );
      }
    }
  }

  cancel(reason: string): void {
    if (!this.closed && !this.bus.closed)
      this.bus.send(logStreamControl, { type: 'cancel', reason: reason.slice(0, 2048) }, { tokens: this.tokens });
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.subscription.unsubscribe();
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.fail(new CollectionError('STOPPED', 'the log stream was closed'));
  }
}

/** The agent's answer as a CollectionError with the message the bundle shows. */
function refused(error: unknown, clusterId: string, timeoutMs: number): CollectionError {
  if (error instanceof BusError) {
    switch (error.code) {
      case 'NO_RESPONDERS':
        return new CollectionError(
          'AGENT_UNREACHABLE',
          `the agent of cluster ${clusterId} is unreachable: no agent of the cluster is connected`,
          { cause: error },
        );
      case 'TIMEOUT':
        return new CollectionError(
          'AGENT_TIMEOUT',
          `the agent of cluster ${clusterId} did not answer within ${Math.round(timeoutMs / 1000)} s`,
          { cause: error },
        );
      case 'CONFLICT':
      case 'NOT_FOUND':
      case 'BAD_REQUEST':
        return new CollectionError(
          'AGENT_REFUSED',
          `the agent of cluster ${clusterId} refused to collect logs: ${error.message}`,
          { cause: error },
        );
    }
  }
  return new CollectionError(
    'AGENT_UNREACHABLE',
    `the agent of cluster ${clusterId} could not be asked: ${(error as Error).message}`,
    { cause: error },
  );
}

/**
 * Asks the cluster's agent to collect and returns the stream of what it sends.
 * @throws CollectionError when the agent cannot be reached, does not answer, or refuses
 */
export async function openAgentStream(
  bus: Bus,
  request: Omit<CollectLogsRequest, 'stream'>,
  options: AgentStreamOptions,
): Promise<AgentStream> {
  // Unguessable, so that no other client of the account can tell which subjects to listen on.
  const streamId = `${request.bundleId.slice(0, 64)}-${randomBytes(12).toString('hex')}`;
  // Subscribed before asking, so that no message can arrive unheard.
  const receiver = new Receiver(bus, request.clusterId, streamId, options);
  try {
    const reply = await bus.request(
      collectLogs,
      { ...request, stream: { id: streamId, window: options.window, chunkBytes: options.chunkBytes } },
      { timeoutMs: options.requestTimeoutMs },
    );
    receiver.nodes = reply.nodes;
    return receiver;
  } catch (error) {
    receiver.close();
    throw refused(error, request.clusterId, options.requestTimeoutMs);
  }
}
