import type { Bus } from '@fleetgraph/kit';
import { decodeLogStream, encodeLogStream, logStreamControlSchema, logStreamSubjects, type LogStreamMessage } from '@fleetgraph/schema';

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
  /** The collection's stream id (`logStreamSubjects`). */
  streamId: string;
  /** Messages that may be sent before the first credit arrives. */
  window: number;
  /** How long to wait for credit before giving up on the logs service. */
  creditTimeoutMs: number;
}

/**
 * The agent's end of a collection's stream: numbers the messages 1, 2, 3, ..., publishes them on
 * the `data` subject, and never runs more than the granted credit ahead (credit-based flow
 * control, as HTTP/2 and AMQP do it). `send` waits for credit, so a slow logs service slows the
 * agent down instead of piling messages up in either process.
 */
export class LogStreamSender {
  private seq = 0;
  private granted: number;
  private stopped: CollectionStoppedError | null = null;
  private wake: (() => void) | null = null;
  private readonly subjects: { data: string; control: string };
  private readonly subscription: { unsubscribe(): void };
  /** The largest message the NATS server takes, less room for the protocol line. */
  private readonly maxPayload: number;

  constructor(
    private readonly connection: Bus['connection'],
    private readonly options: LogStreamSenderOptions,
  ) {
    this.subjects = logStreamSubjects(options.streamId);
    this.granted = options.window;
    this.maxPayload = Math.max(8 * 1024, (connection.info?.max_payload ?? 1024 * 1024) - 1024);
    this.subscription = connection.subscribe(this.subjects.control, {
      callback: (err, msg) => {
        if (err) return;
        const control = decodeLogStream(logStreamControlSchema, msg.data);
        if (!control.ok) return;
        if (control.value.type === 'credit') this.granted = Math.max(this.granted, control.value.upTo);
        else this.stopped ??= new CollectionStoppedError(`the logs service cancelled the collection: ${control.value.reason}`);
        this.wake?.();
      },
    });
  }

  /** Whether the logs service cancelled the collection. */
  get cancelled(): boolean {
    return this.stopped !== null;
  }

  /** Sends one message once credit allows. @throws CollectionStoppedError */
  async send(message: UnnumberedMessage): Promise<void> {
    // Sends are sequential, so the number checked here is the one sent.
    const body = encodeLogStream({ ...message, seq: this.seq + 1 } as LogStreamMessage);
    if (body.length > this.maxPayload && message.type === 'file' && message.data.length > 1) {
      // Escaping can grow a chunk past the server's limit: send it in two halves.
      const half = cut(message.data, Math.floor(message.data.length / 2));
      await this.send({ ...message, data: message.data.slice(0, half), last: false });
      await this.send({ ...message, data: message.data.slice(half) });
      return;
    }
    await this.credit();
    this.seq++;
    this.connection.publish(this.subjects.data, body);
  }

  /** Reports a failure and ends the stream, without waiting for credit (the message is small and last). */
  fail(message: string): void {
    if (this.stopped || this.connection.isClosed()) return;
    this.seq++;
    this.connection.publish(this.subjects.data, encodeLogStream({ type: 'error', seq: this.seq, message: message.slice(0, 2048) }));
  }

  /** Stops the collection from the agent's side (the agent is stopping). */
  stop(reason: string): void {
    this.stopped ??= new CollectionStoppedError(reason);
    this.wake?.();
  }

  close(): void {
    this.subscription.unsubscribe();
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
        this.stopped = new CollectionStoppedError(`no credit from the logs service for ${Math.round(this.options.creditTimeoutMs / 1000)} s`);
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
export async function* chunkLines(lines: Iterable<string> | AsyncIterable<string>, size: number): AsyncGenerator<string> {
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
