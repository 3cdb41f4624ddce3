import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTracing, type Tracing } from '@fleetgraph/kit';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProvider } from './create-provider.js';
import { CloudError } from './errors.js';

/** An EC2 endpoint that refuses every call as EC2 refuses an action the credentials may not do. */
function refusingEc2(): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(403, { 'content-type': 'text/xml' });
      response.end(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>UnauthorizedOperation</Code>' +
          '<Message>You are not authorized to perform this operation.</Message></Error></Errors>' +
          '<RequestID>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestID></Response>',
      );
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('cloud call spans', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let ec2: http.Server;

  beforeAll(async () => {
    tracing = await startTracing('clouds-test', { exporter });
    ec2 = await refusingEc2();
  });

  afterAll(async () => {
    ec2?.close();
    await tracing?.shutdown();
  });

  it('should record each provider operation and each SDK call beneath it, with the region and the error codes', async () => {
    const provider = createProvider({
      type: 'AWS',
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${(ec2.address() as AddressInfo).port}`,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' },
      maxAttempts: 1,
    });
    try {
      const failure = await provider.describeMachines({ clusterId: 'cls_1', region: 'eu-west-1' }).catch((e) => e);
      expect(failure).toBeInstanceOf(CloudError);
    } finally {
      await provider.close();
    }
    const spans = exporter.getFinishedSpans();
    const operation = spans.find((s) => s.name === 'AWS describeMachines');
    const call = spans.find((s) => s.name === 'EC2 DescribeInstances');
    expect(operation?.attributes).toMatchObject({
      'cloud.provider': 'aws',
      'cloud.region': 'eu-west-1',
      'fleetgraph.cloud.operation': 'describeMachines',
      'error.type': 'UNAUTHORIZED',
      'fleetgraph.cloud.error_code': 'UnauthorizedOperation',
    });
    expect(operation?.status.code).toBe(2);
    expect(call?.attributes).toMatchObject({
      'rpc.service': 'EC2',
      'rpc.method': 'DescribeInstances',
      'cloud.region': 'eu-west-1',
      'fleetgraph.cloud.error_code': 'UnauthorizedOperation',
    });
    expect(call?.parentSpanContext?.spanId).toBe(operation?.spanContext().spanId);
  });
});
