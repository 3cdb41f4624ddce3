import { createBus, createLogger, serveSubject, type Bus } from '@fleetgraph/kit';
import { rawNats, startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import {
  collectLogs,
  logStreamControl,
  logStreamData,
  type CollectLogsRequest,
  type LogStreamMessage,
} from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectionError } from '../domain/collection-error.js';
import { openAgentStream, type StreamItem } from './agent-stream.js';

const log = createLogger('agent-stream-test', 'silent');
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The receiving end of a collection against a hand-written agent that misbehaves on purpose:
 * what a real agent never does must end the stream with a clear error, never hang or grow.
 */
describe('the log stream with flow control', () => {
  let nats: NatsServer;
  let service: Bus;
  let agent: Bus;
  let n = 0;

  beforeAll(async () => {
    nats = await startNatsServer();
    service = await createBus({ url: nats.url, name: 'logs', log, credentials: await nats.credentials('logs') });
    agent = await createBus({ url: nats.url, name: 'agent', log, credentials: await nats.credentials('agent') });
  });
  afterAll(async () => {
    await service?.close();
    await agent?.close();
    await nats?.stop();
  });

  const file = (seq: number, last = false): LogStreamMessage => ({
    type: 'file',
    seq,
    path: 'nodes/n/system.log',
    data: `line ${seq}\n`,
    last,
  });

  /** A fake agent of a new cluster: accepts, then calls `behave` with a way to send raw messages. */
  async function fakeAgent(
    behave: (send: (m: LogStreamMessage | string) => void, credits: number[], request: CollectLogsRequest) => void,
  ) {
    const clusterId = `cls-${++n}`;
    const credits: number[] = [];
    rawNats(agent).connection.subscribe(serveSubject(collectLogs, { clusterId }), {
      callback: (_err, msg) => {
        const request = JSON.parse(decoder.decode(msg.data)) as CollectLogsRequest;
        const tokens = { clusterId: request.clusterId, streamId: request.stream.id };
        agent.listen(logStreamControl, {
          tokens,
          handle: (control) => {
            if (control.type === 'credit') credits.push(control.upTo);
          },
        });
        msg.respond(encoder.encode(JSON.stringify({ ok: true, data: { accepted: true, nodes: 1 } })));
        // Strings go as they are: what a real agent never sends.
        const send = (m: LogStreamMessage | string) =>
          typeof m === 'string'
            ? rawNats(agent).connection.publish(logStreamData.subjectOf(tokens), encoder.encode(m))
            : agent.send(logStreamData, m, { tokens });
        setTimeout(() => behave(send, credits, request), 20);
      },
    });
    // The server has the subscription once a round trip went through after it.
    await agent.flush();
    return { clusterId, credits };
  }

  async function consume(clusterId: string, options: { window?: number; signal?: AbortSignal; delayMs?: number } = {}) {
    const stream = await openAgentStream(
      service,
      {
        clusterId,
        tenantId: 't1',
        bundleId: `lb_${n}`,
        parts: { kubeSystem: false, namespaceLogs: false, nodeLogs: true },
        nodeLogLines: 10,
        namespaceSince: new Date().toISOString(),
      },
      {
        window: options.window ?? 4,
        chunkBytes: 1024,
        requestTimeoutMs: 1_000,
        idleTimeoutMs: 500,
        signal: options.signal,
      },
    );
    const items: StreamItem[] = [];
    try {
      for await (const item of stream) {
        items.push(item);
        if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      }
      return { items };
    } catch (error) {
      return { items, error: error as CollectionError };
    } finally {
      stream.close();
    }
  }

  it('should hand out every message in order and grant credit as they are consumed', async () => {
    const { clusterId, credits } = await fakeAgent((send, credit) => {
      const messages = [
        ...Array.from({ length: 20 }, (_, i) => file(i + 1, i === 19)),
        { type: 'end', seq: 21, files: 1, resources: 0 } as const,
      ];
      let sent = 0;
      const pump = () => {
        // Like the real agent: never past the credit.
        while (sent < messages.length && sent + 1 <= Math.max(4, ...credit)) send(messages[sent++]!);
        if (sent < messages.length) setTimeout(pump, 5);
      };
      pump();
    });
    const { items, error } = await consume(clusterId);
    expect(error).toBeUndefined();
    expect(items.map((i) => i.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    // Credit in steps of the window, once half of it is consumed.
    expect(credits.slice(0, 3)).toEqual([6, 8, 10]);
  });

  it.each([
    [
      'a lost message',
      (send: (m: LogStreamMessage) => void) => {
        for (const s of [1, 2, 4]) send(file(s));
      },
      'log data was lost in transit: expected message 3, got 4',
    ],
    [
      'a message past the window',
      (send: (m: LogStreamMessage) => void) => {
        for (const s of [1, 2, 3, 4, 5]) send(file(s));
      },
      'the agent sent past its flow-control window (4)',
    ],
    [
      'a malformed message',
      (send: (m: LogStreamMessage | string) => void) =>
        send('{"type":"file","seq":1,"path":"../etc/passwd","data":"","last":true}'),
      'the agent sent a malformed message',
    ],
    [
      'an error from the agent',
      (send: (m: LogStreamMessage) => void) => send({ type: 'error', seq: 1, message: 'kubelet unreachable' }),
      'kubelet unreachable',
    ],
    ['silence', () => {}, 'the agent stopped sending logs: nothing for 1 s'],
  ])('should end the stream on %s', async (_what, behave, message) => {
    const { clusterId } = await fakeAgent(behave as never);
    // A slow consumer, so that an overrun is not hidden by credit granted meanwhile.
    const { error } = await consume(clusterId, { delayMs: 100 });
    expect(error).toBeInstanceOf(CollectionError);
    expect(error!.message).toContain(message);
  });

  it('should end the stream with the reason it was aborted for', async () => {
    const { clusterId } = await fakeAgent(() => {});
    const controller = new AbortController();
    setTimeout(() => controller.abort(new CollectionError('DEADLINE', 'the collection took longer than 1 s')), 100);
    const { error } = await consume(clusterId, { signal: controller.signal });
    expect(error).toMatchObject({ code: 'DEADLINE', message: 'the collection took longer than 1 s' });
  });

  it('should report an agent that is not connected, and one that does not answer', async () => {
    await expect(consume('cls-nobody')).rejects.toMatchObject({ code: 'AGENT_UNREACHABLE' });
    rawNats(agent).connection.subscribe(serveSubject(collectLogs, { clusterId: 'cls-deaf' }), { callback: () => {} });
    await agent.flush();
    await expect(consume('cls-deaf')).rejects.toMatchObject({
      code: 'AGENT_TIMEOUT',
      message: 'the agent of cluster cls-deaf did not answer within 1 s',
    });
  });
});
