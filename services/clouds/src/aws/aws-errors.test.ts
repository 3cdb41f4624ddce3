/**
 * The AWS adapter's error classification, with the EC2 client replaced by aws-sdk-client-mock
 * (a FAKE client: nothing reaches AWS), for the EC2 errors the local cloud does not produce.
 */
import * as sdk from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CloudError } from '../errors.js';
import { createAwsProvider } from './aws-provider.js';
import { classifyEc2Code } from './mapping.js';

const ec2 = mockClient(sdk.EC2Client);
afterEach(() => ec2.reset());
afterAll(() => ec2.restore());

function ec2Error(code: string, message: string, status: number) {
  return new sdk.EC2ServiceException({
    name: code,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
    message,
  });
}

const provider = createAwsProvider({
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' },
  maxAttempts: 1,
});

const createInput = {
  clientToken: 'token-1',
  clusterId: 'c1',
  pool: 'workers',
  machineName: 'workers-1',
  role: 'WORKER' as const,
  region: 'us-east-1',
  zone: 'us-east-1a',
  instanceType: 't3.medium',
  imageId: 'ami-0123456789abcdef0',
};

describe('aws adapter error classification (EC2 client mocked by aws-sdk-client-mock)', () => {
  it.each([
    ['VcpuLimitExceeded', 400, 'QUOTA_EXCEEDED', true],
    ['InstanceLimitExceeded', 400, 'QUOTA_EXCEEDED', true],
    ['RequestLimitExceeded', 503, 'RATE_LIMITED', true],
    ['Throttling', 400, 'RATE_LIMITED', true],
    ['UnauthorizedOperation', 403, 'UNAUTHORIZED', false],
    ['AuthFailure', 401, 'UNAUTHORIZED', false],
    ['InsufficientInstanceCapacity', 500, 'RESOURCES_DEPLETED', true],
    ['InvalidParameterValue', 400, 'INVALID_CONFIGURATION', false],
    ['InvalidAMIID.NotFound', 400, 'INVALID_CONFIGURATION', false],
    ['InvalidAMIID.Malformed', 400, 'INVALID_CONFIGURATION', false],
    ['Unsupported', 400, 'INVALID_CONFIGURATION', false],
    ['IdempotentParameterMismatch', 400, 'INVALID_CONFIGURATION', false],
    ['InvalidInstanceID.NotFound', 400, 'NOT_FOUND', false],
    ['InvalidSubnetID.NotFound', 400, 'NOT_FOUND', false],
    ['InternalError', 500, 'TRANSIENT', true],
    ['Unavailable', 503, 'TRANSIENT', true],
    ['SomethingNew', 502, 'TRANSIENT', true],
    ['SomethingNew', 400, 'INVALID_CONFIGURATION', false],
  ] as const)(
    'classifies %s (HTTP %i) from RunInstances as %s, keeping the message verbatim',
    async (code, status, expected, retryable) => {
      const message = `EC2 says: ${code} happened.`;
      ec2.on(sdk.RunInstancesCommand).rejects(ec2Error(code, message, status));
      const error = await provider.createMachine(createInput).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CloudError);
      expect(error).toMatchObject({
        name: 'CloudError',
        code: expected,
        cloudCode: code,
        message,
        httpStatus: status,
        retryable,
        cloud: 'AWS',
        operation: 'createMachine',
      });
      expect((error as CloudError).cause).toBeInstanceOf(sdk.EC2ServiceException);
      expect(classifyEc2Code(code, status)).toBe(expected);
    },
  );

  it('classifies a refused connection as TRANSIENT', async () => {
    ec2
      .on(sdk.DescribeInstancesCommand)
      .rejects(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), { code: 'ECONNREFUSED' }));
    const error = await provider.describeMachines({ clusterId: 'c1', region: 'us-east-1' }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'CloudError',
      code: 'TRANSIENT',
      retryable: true,
      message: 'connect ECONNREFUSED 127.0.0.1:4566',
    });
  });

  it('sends RunInstances with the client token and tags naming cluster, pool, machine and role', async () => {
    ec2.on(sdk.RunInstancesCommand).resolves({
      Instances: [
        {
          InstanceId: 'i-0123456789abcdef0',
          State: { Name: 'pending', Code: 0 },
          Placement: { AvailabilityZone: 'us-east-1a' },
        },
      ],
    });
    const machine = await provider.createMachine({ ...createInput, userData: '#cloud-config\n' });
    expect(machine).toMatchObject({ id: 'i-0123456789abcdef0', state: 'pending', zone: 'us-east-1a' });
    const sent = ec2.commandCalls(sdk.RunInstancesCommand)[0]!.args[0].input;
    expect(sent).toMatchObject({
      ClientToken: 'token-1',
      MinCount: 1,
      MaxCount: 1,
      Placement: { AvailabilityZone: 'us-east-1a' },
      UserData: Buffer.from('#cloud-config\n').toString('base64'),
    });
    expect(sent.TagSpecifications?.[0]).toEqual({
      ResourceType: 'instance',
      Tags: expect.arrayContaining([
        { Key: 'fleetgraph:cluster', Value: 'c1' },
        { Key: 'fleetgraph:pool', Value: 'workers' },
        { Key: 'fleetgraph:machine', Value: 'workers-1' },
        { Key: 'fleetgraph:role', Value: 'WORKER' },
        { Key: 'Name', Value: 'workers-1' },
      ]),
    });
  });

  it('hashes a client token longer than the 64 characters EC2 takes, the same way every time', async () => {
    ec2.on(sdk.RunInstancesCommand).resolves({ Instances: [{ InstanceId: 'i-0123456789abcdef0' }] });
    const long = 'x'.repeat(100);
    await provider.createMachine({ ...createInput, clientToken: long });
    await provider.createMachine({ ...createInput, clientToken: long });
    const tokens = ec2.commandCalls(sdk.RunInstancesCommand).map((c) => c.args[0].input.ClientToken);
    expect(tokens[0]).toHaveLength(64);
    expect(tokens[1]).toBe(tokens[0]);
  });

  it('treats InvalidInstanceID.NotFound as "nothing there" for describe and delete', async () => {
    ec2
      .on(sdk.DescribeInstancesCommand)
      .rejects(ec2Error('InvalidInstanceID.NotFound', "The instance ID 'i-0123456789abcdef0' does not exist", 400));
    ec2
      .on(sdk.TerminateInstancesCommand)
      .rejects(ec2Error('InvalidInstanceID.NotFound', "The instance ID 'i-0123456789abcdef0' does not exist", 400));
    expect(await provider.describeMachine('us-east-1', 'i-0123456789abcdef0')).toBeNull();
    await expect(provider.deleteMachine('us-east-1', 'i-0123456789abcdef0')).resolves.toBeUndefined();
  });

  it('reports no quota: EC2 does not, Service Quotas does', async () => {
    expect(await provider.quota('us-east-1')).toBeNull();
  });
});
