import { PayloadTooLargeError, type Bus } from '@fleetgraph/kit/core';
import { logStreamControl, logStreamData, type LogStreamMessage } from '@fleetgraph/schema';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A stream message before the sender numbers it. */
export type UnnumberedMessage = DistributiveOmit<LogStreamMessage, 'seq'>;

/** The logs service cancelled the collection, or stopped granting credit. */
export class CollectionStoppedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CollectionStoppedError';
  }
}

export interface LogStreamSenderOptions {
  /** The cluster and the collection's stream id (the tokens of `logStreamData` and `logStreamControl`). */
  clusterId: string;
  streamId: string;
  /** Messages that may be sent before the first credit arrives. */
  window: number;
  /** How long to wait for credit before giving up on the logs service. */
  creditTimeoutMs: number;
}

/**
 * The agent's end of a collection's stream: numbers the messages 1, 2, 3, ..., sends them on
 * `logStreamData`, and never runs more than the credit granted on `logStreamControl` ahead
 * (credit-based flow control, as HTTP/2 and AMQP do it). `send` waits for credit, so a slow logs
 * service slows the agent down instead of piling messages up in either process.
 */
export class LogStreamSender {
  private seq = 0;
  private granted: number;
  private stopped: CollectionStoppedError | null = null;
  private wake: (() => void) | null = null;
  private readonly tokens: { clusterId: string; streamId: string };
  private readonly listening: { unsubscribe(): void };
  /** The largest message the NATS server takes, less room for the protocol line. */
  private readonly maxPayload: number;

  constructor(
    private readonly bus: Bus,
    private readonly options: LogStreamSenderOptions,
  ) {
    this.tokens = { clusterId: options.clusterId, streamId: options.streamId };
    this.granted = options.window;
    this.maxPayload = Math.max(8 * 1024, bus.maxPayload - 1024);
    this.listening = bus.listen(logStreamControl, {
      tokens: this.tokens,
      handle: (control) => {
        if (control.type === 'credit') this.granted = Math.max(this.granted, control.upTo);
        else
          this.stopped ??= new CollectionStoppedError(`the logs service cancelled the collection: ${control.reason}`);
        this.wake?.();
      },
      // A control message that does not parse, or a failed subscription, changes nothing: without
      // credit, the wait for it times out.
      malformed: () => {},
      error: () => {},
    });
  }

  /** Whether the logs service cancelled the collection. */
  get cancelled(): boolean {
    return this.stopped !== null;
  }

  /** Sends one message once credit allows. @throws CollectionStoppedError */
  async send(message: UnnumberedMessage): Promise<void> {
    await this.credit();
    // Sends are sequential, so the number given here is the one sent.
    const numbered = { ...message, seq: this.seq + 1 } as LogStreamMessage;
    const splittable = message.type === 'file' && message.data.length > 1;
    try {
      this.bus.send(logStreamData, numbered, {
        tokens: this.tokens,
        maxBytes: splittable ? this.maxPayload : undefined,
      });
    } catch (error) {
      if (!(error instanceof PayloadTooLargeError) || message.type !== 'file') throw error;
      // Escaping can grow a chunk past the server's limit: send it in two halves.
      const half = cut(message.data, Math.floor(message.data.length / 2));
      await this.send({ ...message, data: message.data.slice(0, half), last: false });
      await this.send({ ...message, data: message.data.slice(half) });
      return;
    }
    this.seq++;
  }

  /** Reports a failure and ends the stream, without waiting for credit (the message is small and last). */
  fail(message: string): void {
    if (this.stopped || this.bus.closed) return;
    this.seq++;
    this.bus.send(
      logStreamData,
      { type: 'error', seq: this.seq, message: message.slice(0, 2048) },
      { tokens: this.tokens },
    );
  }

  /** Stops the collection from the agent's side (the agent is stopping). */
  stop(reason: string): void {
    this.stopped ??= new CollectionStoppedError(reason);
    this.wake?.();
  }

  close(): void {
    this.listening.unsubscribe();
    this.wake?.();
  }

  private async credit(): Promise<void> {
    while (!this.stopped && this.seq + 1 > this.granted) {
      const woken = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), this.options.creditTimeoutMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      this.wake = null;
      if (!woken && this.seq + 1 > this.granted) {
        this.stopped = new CollectionStoppedError(
          `no credit from the logs service for ${Math.round(this.options.creditTimeoutMs / 1000)} s`,
        );
      }
    }
    if (this.stopped) throw this.stopped;
  }
}

/** Where to cut a string near `at` without splitting a surrogate pair, preferring just after a line end. */
export function cut(text: string, at: number): number {
  const newline = text.lastIndexOf('\n', at - 1);
  if (newline >= at / 2) return newline + 1;
  const code = text.charCodeAt(at - 1);
  return code >= 0xd800 && code <= 0xdbff ? at - 1 : at;
}

/**
 * Joins lines into chunks of at most `size` characters (a longer line is split), each ending at
 * a line end where one fits, and never splitting a surrogate pair.
 */
export async function* chunkLines(
  lines: Iterable<string> | AsyncIterable<string>,
  size: number,
): AsyncGenerator<string> {
  let buffer = '';
  for await (const line of lines) {
    buffer += `${line}\n`;
    while (buffer.length >= size) {
      const at = cut(buffer, size);
      yield buffer.slice(0, at);
      buffer = buffer.slice(at);
    }
  }
  if (buffer.length > 0) yield buffer;
}
