/**
 * The typed bus: one NATS connection per process, and every way the platform talks over it
 * (requests, core messages, JetStream events, streams, readiness), each checked against its
 * contract's schema. Over 400 lines: the methods are one closure over one connection and its
 * consumers; the JetStream reading helpers already live in jetstream.ts.
 */
import {
  AckPolicy,
  connect,
  credsAuthenticator,
  DeliverPolicy,
  ErrorCode as NatsErrorCode,
  nanos,
  NatsError,
  StorageType,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
  type Msg,
  type StreamConfig,
} from 'nats';
import { REQUEST_ID_HEADER, withRequestScope, type Logger } from '../log.js';
import { failActiveSpan, SpanKind } from '../tracing.js';
import { encode, outgoingHeaders, parseJson, validate } from './codec.js';
import { BusError, type BusErrorCode, BusErrorCodes, PayloadSchemaError, PayloadTooLargeError } from './errors.js';
import {
  deadLetter,
  followStream,
  lastMessage,
  streamState,
  watchStream,
  type Delivery,
  type FollowOptions,
  type Following,
  type JetStreamContext,
  type StoredMessage,
  type StreamState,
  type Watch,
  type WatchOptions,
} from './jetstream.js';
import { openKeyValue, type KeyValueBucket, type KeyValueDef } from './key-value.js';
import { meterBus } from './metered.js';
import { registerRaw } from './raw.js';
import { receiving, traceHeaders, traceSends } from './traced.js';
import {
  DEAD_LETTER_STREAM,
  listenSubject,
  isInbox,
  isReplyInbox,
  requestSubject,
  sendSubject,
  serveSubject,
  type EventDef,
  type RequestDef,
  type StreamDef,
  type SubjectDef,
} from './subjects.js';

export type {
  Delivery,
  FollowOptions,
  Following,
  StoredMessage,
  StreamState,
  Watch,
  WatchedMessage,
  WatchOptions,
} from './jetstream.js';

type Reply<T> = { ok: true; data: T } | { ok: false; error: { code: BusErrorCode; message: string } };

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

export interface SendOptions {
  /**
   * The subject's tokens, for a family whose tokens are not fields of the payload (a log
   * collection's stream id). @default taken from the payload
   */
  tokens?: Record<string, string>;
  /**
   * Refuses a body longer than this many bytes with a PayloadTooLargeError, sending nothing.
   * @default no limit but the server's
   */
  maxBytes?: number;
}

export interface ListenOptions<P> {
  /** Tokens of the subjects to listen to; the others are wildcards. @default every subject of the family */
  tokens?: Record<string, string>;
  /** Queue group: the listeners of one group share the messages. @default none: each listener gets every message */
  queue?: string;
  /**
   * Each valid message, in the subscription's callback: synchronously, with no await between
   * messages. A throw is logged.
   */
  handle(payload: P, subject: string): void;
  /**
   * Each message that is not JSON, not of the schema, or of another schema version. It is dropped:
   * core NATS keeps nothing to dead-letter. @default logged, at most once every 10 s
   */
  malformed?(error: string, subject: string): void;
  /** The subscription failed (a permissions violation, say). @default logged */
  error?(error: Error): void;
}

/** A running listener. */
export interface Listening {
  /** Messages dropped as malformed. */
  readonly malformed: number;
  unsubscribe(): void;
}

/** A change of the connection: lost (the client reconnects by itself), or back. */
export type BusStatus = 'disconnect' | 'reconnect';

/**
 * Every way a service talks over NATS, typed by the subject definitions of
 * `@fleetgraph/schema`'s contracts; the connection itself stays inside the kit.
 *
 * - request/reply: `serve`, `request`;
 * - JetStream events: `publish` (acknowledged, deduplicated), `consume` (durable consumers),
 *   `follow` (replaying a state stream, then live), `watch`, `lastMessage`, `streamState`
 *   (reading streams as they are, for the gateway's subscriptions);
 * - core NATS, fire-and-forget: `send` and `listen`, for topics (`defineTopic`) and for events
 *   whose loss the next one heals (a usage sample: sent without waiting for an acknowledgement,
 *   still stored by its stream).
 */
export interface Bus {
  /**
   * Whether the connection to NATS is up now: false from a disconnect until the client has
   * reconnected, and once closed.
   */
  readonly connected: boolean;
  /** Whether the connection is closed for good (`close`d): sending throws then. */
  readonly closed: boolean;
  /** The largest body the server takes, in bytes (its `max_payload`). */
  readonly maxPayload: number;
  /**
   * Calls `listener` at each change of the connection, after `connected` changed.
   * @returns a function that stops the calls
   */
  onStatus(listener: (status: BusStatus) => void): () => void;
  /**
   * Answers requests on the subject within the service's queue group. For subjects with
   * `{field}` tokens, `tokens` narrows what this server answers (an agent: its own cluster).
   */
  serve<Req, Res>(
    def: RequestDef<Req, Res>,
    handler: (request: Req) => Promise<Res>,
    options?: { tokens?: Record<string, string>; queue?: string },
  ): { unsubscribe(): void };
  /** Sends a request and returns the validated reply. @throws BusError */
  request<Req, Res>(def: RequestDef<Req, Res>, request: Req, options?: { timeoutMs?: number }): Promise<Res>;
  /** Creates the streams, or updates their limits when they exist. */
  ensureStreams(streams: readonly StreamDef[]): Promise<void>;
  /** Publishes a validated event to JetStream; a repeated `msgId` within the window is dropped. */
  publish<P>(def: EventDef<P>, payload: P, options?: { msgId?: string }): Promise<{ seq: number; duplicate: boolean }>;
  /** Consumes events through a durable consumer; malformed messages are dead-lettered and acknowledged. */
  consume<P>(def: EventDef<P>, options: ConsumeOptions<P>): Promise<Consumption>;
  /**
   * Follows a state stream: every retained event of the definition (validated; a malformed one
   * is dead-lettered once and skipped), then each new one, through an ordered consumer that every
   * replica has for itself. Waits for the stream while it does not exist.
   */
  follow<P>(def: EventDef<P>, options: FollowOptions<P>): Following;
  /**
   * Watches a subject of a stream (or the subjects a pattern with `*` matches) from a sequence, in
   * order, as raw bodies: an ordered, ephemeral consumer. @throws when the stream does not exist or
   * NATS cannot be reached
   */
  watch(stream: string, subject: string, options: WatchOptions): Promise<Watch>;
  /**
   * The last message of a subject in a stream; undefined when it has none. @throws when the stream
   * does not exist or NATS cannot be reached
   */
  lastMessage(stream: string, subject: string): Promise<StoredMessage | undefined>;
  /** What a stream holds; `subjects` (a filter) asks for its messages per subject too. */
  streamState(stream: string, options?: { subjects?: string }): Promise<StreamState>;
  /**
   * Sends a validated message on core NATS without waiting for anything: the client writes what
   * was sent within one tick in one go. An event's stream stores it all the same, unacknowledged.
   * @throws PayloadSchemaError, PayloadTooLargeError (nothing sent), or NATS's error once closed
   */
  send<P>(def: SubjectDef<P>, payload: P, options?: SendOptions): void;
  /** Listens to a subject family on core NATS, validating each message before `handle` sees it. */
  listen<P>(def: SubjectDef<P>, options: ListenOptions<P>): Listening;
  /**
   * A JetStream key-value bucket (created with the bus's stream replicas when it does not exist),
   * opened on its first operation; each operation gives up after `timeoutMs` (@default 2000).
   */
  keyValue<T>(def: KeyValueDef<T>, options?: { timeoutMs?: number }): KeyValueBucket<T>;
  /** Resolves once the server has received everything sent before (a round trip). */
  flush(): Promise<void>;
  /** Throws unless the connection is up and the server answers. */
  ping(): Promise<void>;
  /**
   * Throws unless JetStream can do this process's work: JetStream answers, and so does every
   * stream it ensured and every durable consumer it consumes from (they have a leader). What `/readyz` checks
   * beside `ping`.
   */
  jetStreamReady(timeoutMs?: number): Promise<void>;
  /** Dead letters written by this process since it started. */
  readonly deadLetters: number;
  /** Stops serving and consuming, flushes, and closes the connection. */
  close(): Promise<void>;
  /**
   * The JetStream manager. @deprecated for the gateway's test fixture until it moves to
   * `rawNats(bus)` from `@fleetgraph/kit/testing`: services use the typed methods above
   */
  manager(): Promise<JetStreamManager>;
}

export interface BusOptions {
  url: string;
  /** Service name: the queue group and the connection name. */
  name: string;
  log: Logger;
  /**
   * A NATS credentials file's text (user JWT and seed), or a function giving the current one,
   * read again at every reconnect (an agent whose JWT is renewed). @default none (a server
   * without authentication)
   */
  credentials?: string | (() => string);
  /** Where replies to this client's requests come (a confined user may listen only there). @default `_INBOX` */
  inboxPrefix?: string;
  /**
   * How many NATS nodes keep each stream this bus ensures (`num_replicas`): 3 on a NATS cluster,
   * so that losing a node loses no stream; existing streams are updated to it. @default 1
   */
  streamReplicas?: number;
}

function toStreamConfig(def: StreamDef, replicas: number): Partial<StreamConfig> {
  return {
    name: def.name,
    num_replicas: replicas,
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
  const { credentials } = options;
  const connection = await connect({
    servers: options.url.split(','),
    name,
    ...(credentials
      ? {
          authenticator: credsAuthenticator(() =>
            new TextEncoder().encode(typeof credentials === 'function' ? credentials() : credentials),
          ),
        }
      : {}),
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // An Error with a stack per request and publish is most of nats.js's own cost on hot paths;
    // failures still carry the subject in their message.
    noAsyncTraces: true,
  });
  let connected = true;
  const statusListeners = new Set<(status: BusStatus) => void>();
  (async () => {
    for await (const status of connection.status()) {
      if (status.type === 'disconnect') connected = false;
      else if (status.type === 'reconnect') connected = true;
      if (status.type === 'disconnect' || status.type === 'error')
        log.warn({ status: status.type, data: String(status.data) }, 'nats connection');
      else if (status.type === 'reconnect') log.info('nats reconnected');
      if (status.type === 'disconnect' || status.type === 'reconnect') {
        for (const listener of [...statusListeners]) {
          try {
            listener(status.type);
          } catch (error) {
            log.error({ err: error }, 'connection status listener failed');
          }
        }
      }
    }
  })().catch(() => {});

  const jetstream = connection.jetstream();
  let manager: JetStreamManager | undefined;
  const jsm = async () => (manager ??= await connection.jetstreamManager());
  const consumptions = new Set<ConsumerMessages>();
  const running = new Set<Promise<void>>();
  let deadLetters = 0;
  /** The streams this process ensured and the durable consumers it consumes from: what readiness checks. */
  const ensured = new Set<string>();
  const durables = new Map<string, { stream: string; durable: string }>();
  const streams: JetStreamContext = { jetstream, manager: jsm, log, deadLettered: () => void deadLetters++ };

  async function answer(msg: Msg, reply: Reply<unknown>) {
    if (!msg.reply) return;
    msg.respond(encode(reply), { headers: outgoingHeaders(1) });
  }

  /** The subject a request names with its own fields; null when a field is not a token. */
  function subjectOfRequest(def: RequestDef<unknown, unknown>, request: unknown): string | null {
    try {
      return requestSubject(def, request);
    } catch {
      return null;
    }
  }

  /** The name of a subject family in messages: its template or prefix. */
  const familyOf = (def: SubjectDef<unknown>) => (def.kind === 'topic' ? def.template : def.prefix);

  const bus: Bus = {
    get connected() {
      return connected && !connection.isClosed();
    },
    get closed() {
      return connection.isClosed();
    },
    get maxPayload() {
      return connection.info?.max_payload ?? 1024 * 1024;
    },
    manager: jsm,
    get deadLetters() {
      return deadLetters;
    },

    onStatus(listener) {
      statusListeners.add(listener);
      return () => void statusListeners.delete(listener);
    },

    serve(def, handler, serveOptions) {
      return connection.subscribe(serveSubject(def as RequestDef<unknown, unknown>, serveOptions?.tokens), {
        queue: serveOptions?.queue ?? name,
        callback: (err, msg) => {
          if (err) {
            log.error({ err, subject: def.subject }, 'subscription error');
            return;
          }
          // Answers go to inboxes only (isInbox says why): a request naming another reply
          // subject is dropped unanswered, its handler not run.
          if (msg.reply && !isInbox(msg.reply)) {
            log.warn(
              { subject: def.subject, reply: msg.reply },
              'request with a reply subject that is no inbox dropped',
            );
            deadLetters++;
            return;
          }
          const requestId = msg.headers?.get(REQUEST_ID_HEADER) || undefined;
          const served = async () => {
            const request = validate(def.request, def.version, msg.data, msg.headers);
            if (!request.ok) {
              log.warn({ subject: def.subject, error: request.error }, 'malformed request refused');
              deadLetters++;
              return answer(msg, { ok: false, error: { code: 'BAD_REQUEST', message: request.error } });
            }
            // The request's own tokens name its subject: a client allowed on one cluster's subjects
            // cannot ask about another by putting its id in the body.
            const subject = subjectOfRequest(def as RequestDef<unknown, unknown>, request.value);
            if (subject !== msg.subject) {
              log.warn({ subject: def.subject, received: msg.subject }, 'request for another subject refused');
              deadLetters++;
              return answer(msg, {
                ok: false,
                error: {
                  code: 'BAD_REQUEST',
                  message: `the request's fields name ${subject ?? 'no subject'}, not ${msg.subject}`,
                },
              });
            }
            // Any inbox was checked above; a definition may name whose (replyPrefix).
            if (
              msg.reply &&
              def.replyPrefix &&
              !isReplyInbox(def as RequestDef<unknown, unknown>, request.value, msg.reply)
            ) {
              log.warn(
                { subject: def.subject, reply: msg.reply },
                "request with a reply subject outside its requester's inbox dropped",
              );
              deadLetters++;
              return;
            }
            try {
              const data = await handler(request.value);
              await answer(msg, { ok: true, data });
            } catch (error) {
              if (error instanceof BusError)
                return answer(msg, { ok: false, error: { code: error.code, message: error.message } });
              log.error({ err: error, subject: def.subject }, 'request handler failed');
              failActiveSpan(error);
              return answer(msg, { ok: false, error: { code: 'INTERNAL', message: 'internal error' } });
            }
          };
          const work = withRequestScope(requestId, () => receiving(def.subject, msg, served, SpanKind.SERVER));
          const tracked = work.finally(() => running.delete(tracked));
          running.add(tracked);
        },
      });
    },

    async request(def, request, opts) {
      const checked = def.request.safeParse(request);
      if (!checked.success)
        throw new BusError('BAD_REQUEST', `request does not match ${def.subject}: ${checked.error.issues[0]?.message}`);
      let msg: Msg;
      try {
        msg = await connection.request(
          requestSubject(def as RequestDef<unknown, unknown>, checked.data),
          encode(checked.data),
          {
            timeout: opts?.timeoutMs ?? 5_000,
            headers: outgoingHeaders(def.version),
          },
        );
      } catch (error) {
        if (error instanceof NatsError && error.code === NatsErrorCode.NoResponders) {
          throw new BusError('NO_RESPONDERS', `no service answers ${def.subject}`, { cause: error });
        }
        if (error instanceof NatsError && error.code === NatsErrorCode.Timeout) {
          throw new BusError('TIMEOUT', `${def.subject} did not answer in time`, { cause: error });
        }
        throw new BusError('INTERNAL', `request to ${def.subject} failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
      const json = parseJson(msg.data);
      const reply = json.ok ? (json.value as Reply<unknown>) : undefined;
      if (!reply || typeof reply !== 'object' || typeof reply.ok !== 'boolean')
        throw new BusError('BAD_REPLY', `malformed reply from ${def.subject}`);
      if (!reply.ok) {
        const code = reply.error?.code in BusErrorCodes ? reply.error.code : 'INTERNAL';
        throw new BusError(code, String(reply.error?.message ?? 'unknown error'));
      }
      const data = def.reply.safeParse(reply.data);
      if (!data.success)
        throw new BusError(
          'BAD_REPLY',
          `reply from ${def.subject} does not match its schema: ${data.error.issues[0]?.message}`,
        );
      return data.data;
    },

    async ensureStreams(streams) {
      const m = await jsm();
      for (const def of [DEAD_LETTER_STREAM, ...streams]) {
        const config = toStreamConfig(def, options.streamReplicas ?? 1);
        ensured.add(def.name);
        let current: StreamConfig;
        try {
          current = (await m.streams.info(def.name)).config;
        } catch (error) {
          if (error instanceof NatsError && /stream not found/i.test(error.message)) {
            await m.streams.add(config);
            continue;
          }
          throw error;
        }
        // Unchanged: no update (one sent while another replica's change of the replica count is
        // still under way goes unanswered). Changed: updated, again after a timeout for that reason.
        const changed = (Object.keys(config) as (keyof StreamConfig)[]).some(
          (key) => JSON.stringify(current[key]) !== JSON.stringify(config[key]),
        );
        for (let attempt = 1; changed; attempt++) {
          try {
            await m.streams.update(def.name, config);
            break;
          } catch (error) {
            if (attempt >= 3 || !(error instanceof NatsError && /timeout/i.test(error.message))) throw error;
            log.warn({ stream: def.name, attempt }, 'stream update unanswered (a change under way?); trying again');
          }
        }
      }
    },

    async publish(def, payload, opts) {
      const checked = def.schema.safeParse(payload);
      if (!checked.success)
        throw new TypeError(`event does not match ${def.prefix}: ${checked.error.issues[0]?.message}`);
      const ack = await jetstream.publish(def.subject(checked.data), encode(checked.data), {
        msgID: opts?.msgId,
        headers: outgoingHeaders(def.version),
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    },

    async consume(def, opts) {
      const m = await jsm();
      durables.set(`${def.stream}/${opts.durable}`, { stream: def.stream, durable: opts.durable });
      await m.consumers.add(def.stream, {
        durable_name: opts.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: opts.deliver === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
        filter_subject: opts.filter ?? def.filter(),
        max_deliver: opts.maxDeliver ?? 5,
        ack_wait: nanos(30_000),
      });
      const consumer = await jetstream.consumers.get(def.stream, opts.durable);
      // Pull requests expire every 10 s: one lost with a NATS node is renewed within that, rather
      // than after the default's missed heartbeats (about 45 s without delivery).
      const messages = await consumer.consume({ max_messages: 256, expires: 10_000 });
      consumptions.add(messages);
      const maxDeliver = opts.maxDeliver ?? 5;
      const loop = (async () => {
        for await (const msg of messages) {
          await withRequestScope(msg.headers?.get(REQUEST_ID_HEADER) || undefined, () =>
            receiving(def.prefix, msg, () => handleEvent(def, opts, msg, maxDeliver)),
          );
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

    follow(def, opts) {
      return followStream(streams, def, opts);
    },

    watch(stream, subject, opts) {
      return watchStream(streams, stream, subject, opts);
    },

    lastMessage(stream, subject) {
      return lastMessage(streams, stream, subject);
    },

    streamState(stream, opts) {
      return streamState(streams, stream, opts);
    },

    send(def, payload, opts) {
      const checked = def.schema.safeParse(payload);
      if (!checked.success) {
        const issue = checked.error.issues[0];
        throw new PayloadSchemaError(familyOf(def), issue?.path.join('.') ?? '', issue?.message ?? 'invalid');
      }
      const data = encode(checked.data);
      if (opts?.maxBytes !== undefined && data.length > opts.maxBytes)
        throw new PayloadTooLargeError(data.length, opts.maxBytes);
      const headers = traceHeaders();
      connection.publish(sendSubject(def, checked.data, opts?.tokens), data, headers && { headers });
    },

    listen(def, opts) {
      let malformed = 0;
      let lastLogged = 0;
      const subject = listenSubject(def, opts.tokens);
      const subscription = connection.subscribe(subject, {
        queue: opts.queue,
        callback: (err, msg) => {
          if (err) {
            if (opts.error) opts.error(err);
            else log.error({ err, subject }, 'subscription error');
            return;
          }
          const parsed = validate(def.schema, def.version, msg.data, msg.headers);
          if (!parsed.ok) {
            malformed++;
            if (opts.malformed) opts.malformed(parsed.error, msg.subject);
            else if (Date.now() - lastLogged > 10_000) {
              // A flood of bad messages must not become a flood of log lines.
              lastLogged = Date.now();
              log.warn({ subject: msg.subject, error: parsed.error, dropped: malformed }, 'malformed message dropped');
            }
            return;
          }
          try {
            receiving(familyOf(def), msg, () => opts.handle(parsed.value, msg.subject));
          } catch (error) {
            log.error({ err: error, subject: msg.subject }, 'message handler failed');
          }
        },
      });
      return {
        get malformed() {
          return malformed;
        },
        unsubscribe: () => subscription.unsubscribe(),
      };
    },

    keyValue(def, opts) {
      return openKeyValue(jetstream, def, {
        replicas: options.streamReplicas ?? 1,
        timeoutMs: opts?.timeoutMs ?? 2_000,
      });
    },

    async flush() {
      await connection.flush();
    },

    async ping() {
      if (connection.isClosed()) throw new Error('NATS connection is closed');
      await connection.flush();
    },

    async jetStreamReady(timeoutMs = 2_000) {
      const m = await jsm();
      const within = <T>(what: string, promise: Promise<T>) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${what} did not answer in ${timeoutMs} ms`)), timeoutMs);
        });
        return Promise.race([promise, late]).finally(() => clearTimeout(timer));
      };
      await Promise.all([
        // JetStream itself (its metadata leader), then what this process uses of it.
        within('JetStream', m.getAccountInfo()),
        ...[...ensured].map((name) => within(`stream ${name}`, m.streams.info(name))),
        ...[...durables.values()].map(({ stream, durable }) =>
          within(`consumer ${durable} of ${stream}`, m.consumers.info(stream, durable)),
        ),
      ]);
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
      // Kept once, however many consumers (and followers) of the stream read it.
      await deadLetter(streams, msg.subject, msg.data, event.error, `${def.stream}:${msg.seq}`);
      msg.ack();
      return;
    }
    try {
      await opts.handle({
        payload: event.value,
        subject: msg.subject,
        seq: msg.seq,
        time: new Date(Math.floor(msg.info.timestampNanos / 1e6)),
      });
      msg.ack();
    } catch (error) {
      failActiveSpan(error);
      if (msg.info.redeliveryCount >= maxDeliver) {
        log.error({ err: error, subject: msg.subject, seq: msg.seq }, 'event failed on every delivery; dead-lettered');
        await deadLetter(streams, msg.subject, msg.data, (error as Error).message ?? String(error));
        msg.term();
      } else {
        log.warn({ err: error, subject: msg.subject, seq: msg.seq }, 'event handler failed; will redeliver');
        msg.nak(Math.min(30_000, 500 * 2 ** msg.info.redeliveryCount));
      }
    }
  }

  meterBus(bus);
  traceSends(bus);
  registerRaw(bus, { connection, jetstream, manager: jsm });
  return bus;
}
