import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeServices } from '@apollo/composition';
import {
  buildSubgraph,
  createBus,
  createLogger,
  defineEvent,
  DEV_INTERNAL_SECRET,
  DEV_JWT_SECRET,
  GatewayExecutedFieldError,
  printSubgraph,
  signBearer,
  startSubgraphServer,
  StreamSubscription,
  type Bus,
  type Claims,
  type RunningServer,
  type StreamDef,
  type SubgraphContext,
} from '@fleetgraph/kit';
import { startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { createClient, type Client } from 'graphql-ws';
import { Arg, Ctx, Directive, Field, ID, Int, ObjectType, Query, Resolver, registerEnumType } from 'type-graphql';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { startGateway, type GatewayOptions, type RunningGateway } from '../gateway.js';
import { parse } from './graphql.js';
import { eventually } from './watch.fixture.js';

/**
 * A fixture subgraph shaped like the real ones (a tenant- and project-scoped entity with a query,
 * and Subscription fields bound by `@jetstream`), composed in process, behind a real gateway, on a
 * real nats-server.
 */

export const WidgetStatus = { ACTIVE: 'ACTIVE', DONE: 'DONE', FAILED: 'FAILED' } as const;
export type WidgetStatus = (typeof WidgetStatus)[keyof typeof WidgetStatus];
registerEnumType(WidgetStatus, { name: 'WidgetStatus' });

@Directive('@key(fields: "id")')
@ObjectType()
class Widget {
  @Field(() => ID) id!: string;
  @Field(() => ID) projectId!: string;
  @Field() name!: string;
}

@ObjectType()
class WidgetEvent {
  @Field({ description: 'Filled by the gateway: pass it as widgetEvents(after:) to resume.' }) cursor!: string;
  @Field(() => ID) widgetId!: string;
  @Field(() => Int) n!: number;
  @Field() message!: string;
}

@ObjectType()
class WidgetState {
  @Field(() => ID) widgetId!: string;
  @Field(() => WidgetStatus) status!: WidgetStatus;
  @Field(() => Int) revision!: number;
}

@ObjectType({ description: "A widget's card on its tenant's board: the current one of each, then every change." })
class WidgetCard {
  @Field(() => ID) widgetId!: string;
  @Field(() => ID) projectId!: string;
  @Field(() => Int) revision!: number;
}

interface StoredWidget {
  id: string;
  tenantId: string;
  projectId: string;
  name: string;
}

@Resolver(() => Widget)
class WidgetResolver {
  constructor(private readonly widgets: Map<string, StoredWidget>) {}

  @Query(() => Widget, { nullable: true })
  widget(@Arg('id', () => ID) id: string, @Ctx() { identity }: SubgraphContext): Widget | null {
    const widget = this.widgets.get(id);
    return widget && identity.canSee(widget) ? widget : null;
  }

  @StreamSubscription(() => WidgetEvent, {
    subject: 'widgets.v1.events.{tenantId}.{widgetId}',
    stream: 'WIDGET_EVENTS',
    authorize: 'widget(id: $widgetId) { id }',
    replay: 'CURSOR',
  })
  widgetEvents(
    @Arg('widgetId', () => ID) _widgetId: string,
    @Arg('after', () => String, { nullable: true }) _after?: string,
  ): WidgetEvent {
    throw new GatewayExecutedFieldError('widgetEvents');
  }

  @StreamSubscription(() => WidgetState, {
    subject: 'widgets.v1.state.{tenantId}.{widgetId}',
    stream: 'WIDGET_STATE',
    authorize: 'widget(id: $widgetId) { id }',
    replay: 'LAST',
    complete: 'status in [DONE, FAILED]',
  })
  widgetState(@Arg('widgetId', () => ID) _widgetId: string): WidgetState {
    throw new GatewayExecutedFieldError('widgetState');
  }

  @StreamSubscription(() => WidgetCard, {
    subject: 'widgets.v1.board.{tenantId}.{projectId}.*',
    stream: 'WIDGET_STATE',
    replay: 'LAST',
    project: 'projectId',
  })
  widgetBoard(@Arg('projectId', () => ID, { nullable: true }) _projectId?: string): WidgetCard {
    throw new GatewayExecutedFieldError('widgetBoard');
  }
}

export const WIDGET_STREAMS: StreamDef[] = [
  { name: 'WIDGET_EVENTS', subjects: ['widgets.v1.events.>'] },
  { name: 'WIDGET_STATE', subjects: ['widgets.v1.state.>', 'widgets.v1.board.>'], maxMsgsPerSubject: 1 },
];
export const widgetEvent = defineEvent({
  prefix: 'widgets.v1.events',
  stream: 'WIDGET_EVENTS',
  schema: z.object({ tenantId: z.string(), widgetId: z.string(), n: z.number().int(), message: z.string() }),
  keys: ['tenantId', 'widgetId'] as const,
});
export const widgetState = defineEvent({
  prefix: 'widgets.v1.state',
  stream: 'WIDGET_STATE',
  schema: z.object({
    tenantId: z.string(),
    widgetId: z.string(),
    status: z.enum(['ACTIVE', 'DONE', 'FAILED']),
    revision: z.number().int(),
  }),
  keys: ['tenantId', 'widgetId'] as const,
});

export const widgetCard = defineEvent({
  prefix: 'widgets.v1.board',
  stream: 'WIDGET_STATE',
  schema: z.object({ tenantId: z.string(), projectId: z.string(), widgetId: z.string(), revision: z.number().int() }),
  keys: ['tenantId', 'projectId', 'widgetId'] as const,
});

/** The fixture subgraph's SDL as composition reads it. */
export async function widgetsSdl(): Promise<string> {
  return printSubgraph(await buildSubgraph({ resolvers: [WidgetResolver] }));
}

export function composeWidgets(sdl: string, url: string): string {
  const result = composeServices([{ name: 'widgets', url, typeDefs: parse(sdl) }]);
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.supergraphSdl;
}

const id = () => randomUUID().replaceAll('-', '').slice(0, 12);

export interface WidgetsPlatform {
  /** The nats-server running now (see stopNats, startNats). */
  readonly nats: NatsServer;
  /** Stops the nats-server (an outage); its JetStream data is kept for startNats. */
  stopNats(): Promise<void>;
  /** Starts the nats-server again, on the same port and with the same JetStream data. */
  startNats(): Promise<void>;
  /** The publisher's connection (the gateways have their own). */
  bus: Bus;
  /** The main gateway's connection to NATS. */
  gatewayBus: Bus;
  supergraphSdl: string;
  gateway: RunningGateway;
  wsUrl: string;
  /** Starts one more gateway on the same NATS and subgraph (another replica). */
  startGateway(
    options?: GatewayOptions['subscriptions'],
  ): Promise<{ gateway: RunningGateway; wsUrl: string; close(): Promise<void> }>;
  /** Stores a widget and returns its id. */
  widget(tenantId: string, projectId: string): string;
  /** Deletes a widget: `widget(id:)` answers null from now on. */
  deleteWidget(widgetId: string): void;
  token(claims: Claims, expiresIn?: string | number): Promise<string>;
  /** A graphql-ws client that does not retry, closed by `stop()`. */
  client(token?: string, url?: string): Client;
  publishEvent(tenantId: string, widgetId: string, n: number, message?: string): Promise<number>;
  publishState(tenantId: string, widgetId: string, status: WidgetStatus, revision: number): Promise<number>;
  publishCard(tenantId: string, projectId: string, widgetId: string, revision: number): Promise<number>;
  /** JetStream consumers on a stream, as the server counts them. */
  consumerCount(stream: string): Promise<number>;
  /**
   * Resolves once nothing outlives its clients: no subscription, connection or consumer on the
   * main gateway, and no consumer on the widget events stream.
   */
  drained(): Promise<void>;
  /** A sample of the gateway's /metrics. */
  metric(name: string, gateway?: RunningGateway): Promise<number>;
  stop(): Promise<void>;
}

export const ids = { tenant: () => `t${id()}`, project: () => `p${id()}` };

export async function startWidgetsPlatform(
  subscriptions: GatewayOptions['subscriptions'] = {},
  /** More options of every gateway it starts. */
  gatewayOptions: Pick<
    GatewayOptions,
    'rateLimit' | 'trustedProxyHops' | 'corsOrigins' | 'dashboard' | 'metricsPort'
  > = {},
): Promise<WidgetsPlatform> {
  const log = createLogger('widgets-test', process.env.TEST_LOG_LEVEL ?? 'silent');
  // The JetStream data outlives a restart of the server (stopNats, startNats).
  const natsDir = await mkdtemp(join(tmpdir(), 'fleetgraph-widgets-nats-'));
  let nats = await startNatsServer({ storeDir: natsDir });
  const natsPort = nats.port;
  const buses: Bus[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  const clients = new Set<Client>();
  const bus = await createBus({
    url: nats.url,
    name: 'publisher',
    log,
    credentials: await nats.credentials('publisher'),
  });
  buses.push(bus);
  await bus.ensureStreams(WIDGET_STREAMS);

  const widgets = new Map<string, StoredWidget>();
  const resolver = new WidgetResolver(widgets);
  const subgraph: RunningServer = await startSubgraphServer({
    name: 'widgets',
    schema: await buildSubgraph({ resolvers: [WidgetResolver], container: { get: () => resolver } }),
    log,
    host: '127.0.0.1',
    port: 0,
    internalSecret: DEV_INTERNAL_SECRET,
    readiness: [],
  });
  closers.push(() => subgraph.close());
  const supergraphSdl = composeWidgets(await widgetsSdl(), subgraph.url);

  const gatewayBuses = new Map<RunningGateway, Bus>();
  const start = async (options: GatewayOptions['subscriptions'] = subscriptions) => {
    const gatewayBus = await createBus({
      url: nats.url,
      name: 'gateway',
      log,
      credentials: await nats.credentials('gateway'),
    });
    buses.push(gatewayBus);
    const gateway = await startGateway({
      supergraphSdl,
      host: '127.0.0.1',
      port: 0,
      jwtSecret: DEV_JWT_SECRET,
      internalSecret: DEV_INTERNAL_SECRET,
      production: false,
      log,
      bus: gatewayBus,
      env: {},
      subscriptions: options,
      ...gatewayOptions,
    });
    gatewayBuses.set(gateway, gatewayBus);
    let closed: Promise<void> | undefined;
    const close = () => (closed ??= gateway.close());
    closers.unshift(close);
    return { gateway, wsUrl: gateway.url.replace(/^http/, 'ws'), close };
  };
  const main = await start();

  const platform: WidgetsPlatform = {
    get nats() {
      return nats;
    },
    stopNats: () => nats.stop(),
    async startNats() {
      nats = await startNatsServer({ storeDir: natsDir, port: natsPort, security: nats.security });
    },
    bus,
    gatewayBus: gatewayBuses.get(main.gateway)!,
    supergraphSdl,
    gateway: main.gateway,
    wsUrl: main.wsUrl,
    startGateway: start,
    widget(tenantId, projectId) {
      const widgetId = `w${id()}`;
      widgets.set(widgetId, { id: widgetId, tenantId, projectId, name: `widget ${widgetId}` });
      return widgetId;
    },
    deleteWidget(widgetId) {
      widgets.delete(widgetId);
    },
    token: (claims, expiresIn) => signBearer(claims, DEV_JWT_SECRET, expiresIn),
    client(token, url = main.wsUrl) {
      const client = createClient({
        url,
        webSocketImpl: WebSocket,
        connectionParams: token === undefined ? {} : { authorization: `Bearer ${token}` },
        retryAttempts: 0,
        shouldRetry: () => false,
      });
      clients.add(client);
      return client;
    },
    async publishEvent(tenantId, widgetId, n, message = `event ${n}`) {
      return (await bus.publish(widgetEvent, { tenantId, widgetId, n, message })).seq;
    },
    async publishState(tenantId, widgetId, status, revision) {
      return (await bus.publish(widgetState, { tenantId, widgetId, status, revision })).seq;
    },
    async publishCard(tenantId, projectId, widgetId, revision) {
      return (await bus.publish(widgetCard, { tenantId, projectId, widgetId, revision })).seq;
    },
    async consumerCount(stream) {
      const jsm = await bus.manager();
      return (await jsm.consumers.list(stream).next()).length;
    },
    async drained() {
      await eventually(async () => {
        const s = main.gateway.subscriptions.stats();
        return (
          s.subscriptions === 0 &&
          s.connections === 0 &&
          s.consumers === 0 &&
          (await platform.consumerCount('WIDGET_EVENTS')) === 0
        );
      }, 'every subscription, connection and consumer to be gone');
    },
    async metric(name, gateway = main.gateway) {
      const response = await fetch(gateway.metricsUrl);
      const text = await response.text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      if (!line) throw new Error(`no metric ${name} in /metrics`);
      return Number(line.slice(name.length + 1));
    },
    async stop() {
      await Promise.allSettled([...clients].map((c) => c.dispose()));
      for (const close of closers) await close().catch(() => {});
      for (const b of buses) await b.close().catch(() => {});
      await nats.stop();
      await rm(natsDir, { recursive: true, force: true });
    },
  };
  return platform;
}
