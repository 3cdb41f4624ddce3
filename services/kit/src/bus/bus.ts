import {
  AckPolicy,
  connect,
  DeliverPolicy,
  ErrorCode as NatsErrorCode,
  headers as natsHeaders,
  nanos,
  NatsError,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type StreamConfig,
} from 'nats';
import type { z } from 'zod';
import { currentRequestId, REQUEST_ID_HEADER, withRequestScope, type Logger } from '../log.js';
import { BusError, type BusErrorCode, BusErrorCodes } from './errors.js';
import { DEAD_LETTER_STREAM, deadLetterSubject, requestSubject, serveSubject, type EventDef, type RequestDef, type StreamDef } from './subjects.js';

const SCHEMA_VERSION_HEADER = 'fleetgraph-schema-version';
const ERROR_HEADER = 'fleetgraph-error';

type Reply<T> = { ok: true; data: T } | { ok: false; error: { code: BusErrorCode; message: string } };

/** A received event: its payload, subject and stream sequence (the cursor of replayable streams). */
export interface Delivery<P> {
  payload: P;
  subject: string;
  seq: number;
  time: Date;
}

export interface ConsumeOptions<P> {
  /** Durable consumer name: replicas sharing it share the work. */
  durable: string;
  /** Subject filter built with the definition's `filter()`. @default every subject of the definition */
  filter?: string;
  /** Start with every retained message, or only new ones. @default 'all' */
  deliver?: 'all' | 'new';
  /** Redeliveries before a failing message is dead-lettered. @default 5 */
  maxDeliver?: number;
  /** The handler; a throw redelivers the message after a delay. */
  handle(delivery: Delivery<P>): Promise<void>;
}

export interface Consumption {
  stop(): Promise<void>;
}

export interface Bus {
  /** The raw connection, for parts (the gateway's subscriptions) that need what this API does not offer. */
  readonly connection: NatsConnection;
  /** Whether the connection to NATS is up now: false from a disconnect until the client has reconnected, and once closed. */
  readonly connected: boolean;
  readonly jetstream: JetStreamClient;
  /** The JetStream manager, made once (making one asks the server for its account). */
  manager(): Promise<JetStreamManager>;
  /**
   * Answers requests on the subject within the service's queue group. For subjects with
   * `{field}` tokens, `tokens` narrows what this server answers (an agent: its own cluster).
   */
  serve<Req, Res>(def: RequestDef<Req, Res>, handler: (request: Req) => Promise<Res>, options?: { tokens?: Record<string, string>; queue?: string }): { unsubscribe(): void };
  /** Sends a request and returns the validated reply. @throws BusError */
  request<Req, Res>(def: RequestDef<Req, Res>, request: Req, options?: { timeoutMs?: number }): Promise<Res>;
  /** Creates the streams, or updates their limits when they exist. */
  ensureStreams(streams: readonly StreamDef[]): Promise<void>;
  /** Publishes a validated event to JetStream; a repeated `msgId` within the window is dropped. */
  publish<P>(def: EventDef<P>, payload: P, options?: { msgId?: string }): Promise<{ seq: number; duplicate: boolean }>;
  /** Consumes events through a durable consumer; malformed messages are dead-lettered and acknowledged. */
  consume<P>(def: EventDef<P>, options: ConsumeOptions<P>): Promise<Consumption>;
  /** Throws unless the connection is up and the server answers. */
  ping(): Promise<void>;
  /** Dead letters written by this process since it started. */
  readonly deadLetters: number;
  /** Stops serving and consuming, flushes, and closes the connection. */
  close(): Promise<void>;
}

export interface BusOptions {
  url: string;
  /** Service name: the queue group and the connection name. */
  name: string;
  log: Logger;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const encode = (value: unknown) => encoder.encode(JSON.stringify(value));

function parseJson(data: Uint8Array): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(decoder.decode(data)) };
  } catch (error) {
    return { ok: false, error: `body is not JSON: ${(error as Error).message}` };
  }
}

function validate<T>(schema: z.ZodType<T>, version: number, data: Uint8Array, hdrs: MsgHdrs | undefined) {
  const sent = hdrs?.get(SCHEMA_VERSION_HEADER);
  if (sent && Number(sent) !== version) return { ok: false as const, error: `schema version ${sent} is not ${version}` };
  const json = parseJson(data);
  if (!json.ok) return json;
  const parsed = schema.safeParse(json.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false as const, error: `body does not match schema: ${issue?.path.join('.') || '(root)'}: ${issue?.message}` };
  }
  return { ok: true as const, value: parsed.data };
}

function outgoingHeaders(version: number): MsgHdrs {
  const h = natsHeaders();
  h.set(SCHEMA_VERSION_HEADER, String(version));
  const requestId = currentRequestId();
  if (requestId) h.set(REQUEST_ID_HEADER, requestId);
  return h;
}

function toStreamConfig(def: StreamDef): Partial<StreamConfig> {
  return {
    name: def.name,
    subjects: [...def.subjects],
    storage: StorageType.File,
    max_age: def.maxAgeMs ? nanos(def.maxAgeMs) : 0,
    max_msgs_per_subject: def.maxMsgsPerSubject ?? -1,
    duplicate_window: nanos(def.duplicateWindowMs ?? 120_000),
  };
}

/** Connects to NATS (reconnecting forever) and returns the typed bus. */
export async function createBus(options: BusOptions): Promise<Bus> {
  const { log, name } = options;
  const connection = await connect({
    servers: options.url.split(','),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // An Error with a stack per request and publish is most of nats.js's own cost on hot paths;
    // failures still carry the subject in their message.
    noAsyncTraces: true,
  });
  let connected = true;
  (async () => {
    for await (const status of connection.status()) {
      if (status.type === 'disconnect') connected = false;
      else if (status.type === 'reconnect') connected = true;
      if (status.type === 'disconnect' || status.type === 'error') log.warn({ status: status.type, data: String(status.data) }, 'nats connection');
      else if (status.type === 'reconnect') log.info('nats reconnected');
    }
  })().catch(() => {});

  const jetstream = connection.jetstream();
  let manager: JetStreamManager | undefined;
  const jsm = async () => (manager ??= await connection.jetstreamManager());
  const consumptions = new Set<ConsumerMessages>();
  const running = new Set<Promise<void>>();
  let deadLetters = 0;

  async function deadLetter(subject: string, data: Uint8Array, error: string) {
    deadLetters++;
    const h = natsHeaders();
    h.set(ERROR_HEADER, error.slice(0, 1024));
    h.set('fleetgraph-subject', subject);
    try {
      await jetstream.publish(deadLetterSubject(subject), data, { headers: h });
    } catch (publishError) {
      log.error({ err: publishError, subject }, 'could not dead-letter a message');
    }
  }

  async function answer(msg: Msg, reply: Reply<unknown>) {
    if (!msg.reply) return;
    msg.respond(encode(reply), { headers: outgoingHeaders(1) });
  }

  const bus: Bus = {
    connection,
    get connected() {
      return connected && !connection.isClosed();
    },
    jetstream,
    manager: jsm,
    get deadLetters() {
      return deadLetters;
    },

    serve(def, handler, serveOptions) {
      return connection.subscribe(serveSubject(def as RequestDef<unknown, unknown>, serveOptions?.tokens), {
        queue: serveOptions?.queue ?? name,
        callback: (err, msg) => {
          if (err) {
            log.error({ err, subject: def.subject }, 'subscription error');
            return;
          }
          const requestId = msg.headers?.get(REQUEST_ID_HEADER) || undefined;
          const work = withRequestScope(requestId, async () => {
            const request = validate(def.request, def.version, msg.data, msg.headers);
            if (!request.ok) {
              log.warn({ subject: def.subject, error: request.error }, 'malformed request refused');
              deadLetters++;
              return answer(msg, { ok: false, error: { code: 'BAD_REQUEST', message: request.error } });
            }
            try {
              const data = await handler(request.value);
              await answer(msg, { ok: true, data });
            } catch (error) {
              if (error instanceof BusError) return answer(msg, { ok: false, error: { code: error.code, message: error.message } });
              log.error({ err: error, subject: def.subject }, 'request handler failed');
              return answer(msg, { ok: false, error: { code: 'INTERNAL', message: 'internal error' } });
            }
          });
          const tracked = work.finally(() => running.delete(tracked));
          running.add(tracked);
        },
      });
    },

    async request(def, request, opts) {
      const checked = def.request.safeParse(request);
      if (!checked.success) throw new BusError('BAD_REQUEST', `request does not match ${def.subject}: ${checked.error.issues[0]?.message}`);
      let msg: Msg;
      try {
        msg = await connection.request(requestSubject(def as RequestDef<unknown, unknown>, checked.data), encode(checked.data), {
          timeout: opts?.timeoutMs ?? 5_000,
          headers: outgoingHeaders(def.version),
        });
      } catch (error) {
        if (error instanceof NatsError && error.code === NatsErrorCode.NoResponders) {
          throw new BusError('NO_RESPONDERS', `no service answers ${def.subject}`, { cause: error });
        }
        if (error instanceof NatsError && error.code === NatsErrorCode.Timeout) {
          throw new BusError('TIMEOUT', `${def.subject} did not answer in time`, { cause: error });
        }
        throw new BusError('INTERNAL', `request to ${def.subject} failed: ${(error as Error).message}`, { cause: error });
      }
      const json = parseJson(msg.data);
      const reply = json.ok ? (json.value as Reply<unknown>) : undefined;
      if (!reply || typeof reply !== 'object' || typeof reply.ok !== 'boolean') throw new BusError('BAD_REPLY', `malformed reply from ${def.subject}`);
      if (!reply.ok) {
        const code = reply.error?.code in BusErrorCodes ? reply.error.code : 'INTERNAL';
        throw new BusError(code, String(reply.error?.message ?? 'unknown error'));
      }
      const data = def.reply.safeParse(reply.data);
      if (!data.success) throw new BusError('BAD_REPLY', `reply from ${def.subject} does not match its schema: ${data.error.issues[0]?.message}`);
      return data.data;
    },

    async ensureStreams(streams) {
      const m = await jsm();
      for (const def of [DEAD_LETTER_STREAM, ...streams]) {
        const config = toStreamConfig(def);
        try {
          await m.streams.info(def.name);
          await m.streams.update(def.name, config);
        } catch (error) {
          if (error instanceof NatsError && /stream not found/i.test(error.message)) await m.streams.add(config);
          else throw error;
        }
      }
    },

    async publish(def, payload, opts) {
      const checked = def.schema.safeParse(payload);
      if (!checked.success) throw new TypeError(`event does not match ${def.prefix}: ${checked.error.issues[0]?.message}`);
      const ack = await jetstream.publish(def.subject(checked.data), encode(checked.data), {
        msgID: opts?.msgId,
        headers: outgoingHeaders(def.version),
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    },

    async consume(def, opts) {
      const m = await jsm();
      await m.consumers.add(def.stream, {
        durable_name: opts.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: opts.deliver === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
        filter_subject: opts.filter ?? def.filter(),
        max_deliver: opts.maxDeliver ?? 5,
        ack_wait: nanos(30_000),
      });
      const consumer = await jetstream.consumers.get(def.stream, opts.durable);
      const messages = await consumer.consume({ max_messages: 256 });
      consumptions.add(messages);
      const maxDeliver = opts.maxDeliver ?? 5;
      const loop = (async () => {
        for await (const msg of messages) {
          await withRequestScope(msg.headers?.get(REQUEST_ID_HEADER) || undefined, () => handleEvent(def, opts, msg, maxDeliver));
        }
      })().catch((error) => log.error({ err: error, durable: opts.durable }, 'consumer loop ended'));
      return {
        async stop() {
          messages.stop();
          consumptions.delete(messages);
          await loop;
        },
      };
    },

    async ping() {
      if (connection.isClosed()) throw new Error('NATS connection is closed');
      await connection.flush();
    },

    async close() {
      for (const messages of consumptions) messages.stop();
      await Promise.allSettled(running);
      if (!connection.isClosed()) await connection.drain();
    },
  };

  async function handleEvent<P>(def: EventDef<P>, opts: ConsumeOptions<P>, msg: JsMsg, maxDeliver: number) {
    const event = validate(def.schema, def.version, msg.data, msg.headers);
    if (!event.ok) {
      log.warn({ subject: msg.subject, seq: msg.seq, error: event.error }, 'malformed event dead-lettered');
      await deadLetter(msg.subject, msg.data, event.error);
      msg.ack();
      return;
    }
    try {
      await opts.handle({ payload: event.value, subject: msg.subject, seq: msg.seq, time: new Date(Math.floor(msg.info.timestampNanos / 1e6)) });
      msg.ack();
    } catch (error) {
      if (msg.info.redeliveryCount >= maxDeliver) {
        log.error({ err: error, subject: msg.subject, seq: msg.seq }, 'event failed on every delivery; dead-lettered');
        await deadLetter(msg.subject, msg.data, (error as Error).message ?? String(error));
        msg.term();
      } else {
        log.warn({ err: error, subject: msg.subject, seq: msg.seq }, 'event handler failed; will redeliver');
        msg.nak(Math.min(30_000, 500 * 2 ** msg.info.redeliveryCount));
      }
    }
  }

  return bus;
}
