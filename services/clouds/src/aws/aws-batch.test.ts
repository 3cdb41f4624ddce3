/**
 * The AWS adapter's batched describes (`batch.ts`), with the EC2 client replaced by
 * aws-sdk-client-mock (a FAKE client: nothing reaches AWS): many clusters' machines described in
 * one DescribeInstances call per region, and their VPCs looked up in one DescribeVpcs call, each
 * caller answered with its own, and a failure reaching every caller with EC2's own error.
 */
import * as sdk from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CloudError } from '../errors.js';
import type { CloudProvider } from '../provider.js';
import { TagKeys } from '../tags.js';
import { createAwsProvider } from './aws-provider.js';

const ec2 = mockClient(sdk.EC2Client);
const providers: CloudProvider[] = [];
afterEach(async () => {
  ec2.reset();
  await Promise.all(providers.splice(0).map((p) => p.close()));
});
afterAll(() => ec2.restore());

function provider(options: { batchWindowMs?: number; accessKeyId?: string } = {}): CloudProvider {
  const made = createAwsProvider({
    region: 'us-east-1',
    credentials: { accessKeyId: options.accessKeyId ?? 'AKIAFAKE', secretAccessKey: 'fake' },
    maxAttempts: 1,
    ...(options.batchWindowMs === undefined ? {} : { batchWindowMs: options.batchWindowMs }),
  });
  providers.push(made);
  return made;
}

/** An EC2 instance of a cluster's pool, tagged as the adapter tags its machines. */
function instance(id: string, clusterId: string, pool: string, name: string): sdk.Instance {
  return {
    InstanceId: id,
    InstanceType: 't3.medium',
    ImageId: 'ami-0123456789abcdef0',
    Placement: { AvailabilityZone: 'us-east-1a' },
    State: { Name: 'running', Code: 16 },
    Tags: [
      { Key: TagKeys.cluster, Value: clusterId },
      { Key: TagKeys.pool, Value: pool },
      { Key: TagKeys.machine, Value: name },
      { Key: TagKeys.role, Value: 'WORKER' },
    ],
  };
}

/** What DescribeInstances answers: the instances whose cluster tag is among the filter's values. */
function describeInstancesOf(instances: sdk.Instance[]) {
  return (input: sdk.DescribeInstancesCommandInput): sdk.DescribeInstancesCommandOutput => {
    const clusters = input.Filters?.find((f) => f.Name === `tag:${TagKeys.cluster}`)?.Values ?? [];
    const matching = instances.filter((i) => clusters.includes(i.Tags!.find((t) => t.Key === TagKeys.cluster)!.Value!));
    return { Reservations: matching.map((i) => ({ Instances: [i] })), $metadata: {} };
  };
}

const filtersOf = (call: { args: [unknown] }) =>
  (call.args[0] as { input: sdk.DescribeInstancesCommandInput }).input.Filters;

describe('aws adapter: describes of many clusters as one EC2 call (EC2 client mocked by aws-sdk-client-mock)', () => {
  it("describes the machines of clusters asking at once in one call, each getting only its own (and its pool's)", async () => {
    ec2
      .on(sdk.DescribeInstancesCommand)
      .callsFake(
        describeInstancesOf([
          instance('i-a2', 'a', 'workers', 'workers-2'),
          instance('i-a1', 'a', 'control-plane', 'control-plane-1'),
          instance('i-b1', 'b', 'workers', 'workers-1'),
          instance('i-z1', 'z', 'workers', 'workers-1'),
        ]),
      );
    const aws = provider();
    const [a, b, c, aWorkers] = await Promise.all([
      aws.describeMachines({ clusterId: 'a', region: 'us-east-1' }),
      aws.describeMachines({ clusterId: 'b', region: 'us-east-1' }),
      aws.describeMachines({ clusterId: 'c', region: 'us-east-1' }),
      aws.describeMachines({ clusterId: 'a', region: 'us-east-1', pool: 'workers' }),
    ]);
    expect(a.map((m) => m.id)).toEqual(['i-a1', 'i-a2']);
    expect(b.map((m) => m.id)).toEqual(['i-b1']);
    expect(c).toEqual([]);
    expect(aWorkers.map((m) => m.id)).toEqual(['i-a2']);
    // Two callers of one cluster share no objects.
    expect(aWorkers[0]).not.toBe(a[1]);
    expect(aWorkers[0]).toEqual(a[1]);

    const calls = ec2.commandCalls(sdk.DescribeInstancesCommand);
    expect(calls).toHaveLength(1);
    expect(filtersOf(calls[0]!)).toEqual([
      { Name: `tag:${TagKeys.cluster}`, Values: ['a', 'b', 'c'] },
      { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] },
    ]);
  });

  it("fails every caller of a failed batch with EC2's own code and message, each its own CloudError", async () => {
    ec2.on(sdk.DescribeInstancesCommand).rejects(
      new sdk.EC2ServiceException({
        name: 'RequestLimitExceeded',
        $fault: 'client',
        $metadata: { httpStatusCode: 503 },
        message: 'Request limit exceeded.',
      }),
    );
    const aws = provider();
    const errors = await Promise.all(
      ['a', 'b', 'c'].map((clusterId) =>
        aws.describeMachines({ clusterId, region: 'us-east-1' }).catch((e: unknown) => e),
      ),
    );
    expect(ec2.commandCalls(sdk.DescribeInstancesCommand)).toHaveLength(1);
    for (const error of errors) {
      expect(error).toBeInstanceOf(CloudError);
      expect(error).toMatchObject({
        code: 'RATE_LIMITED',
        cloudCode: 'RequestLimitExceeded',
        message: 'Request limit exceeded.',
        operation: 'describeMachines',
        retryable: true,
      });
    }
    expect(new Set(errors).size).toBe(3);
  });

  it('combines nothing across regions, providers (accounts) or states asked for', async () => {
    ec2.on(sdk.DescribeInstancesCommand).callsFake(describeInstancesOf([]));
    const one = provider();
    const other = provider({ accessKeyId: 'AKIAOTHER' });
    await Promise.all([
      one.describeMachines({ clusterId: 'a', region: 'us-east-1' }),
      one.describeMachines({ clusterId: 'b', region: 'us-east-1' }),
      one.describeMachines({ clusterId: 'c', region: 'eu-west-1' }),
      one.describeMachines({ clusterId: 'd', region: 'us-east-1', includeTerminated: true }),
      other.describeMachines({ clusterId: 'e', region: 'us-east-1' }),
    ]);
    const calls = ec2.commandCalls(sdk.DescribeInstancesCommand);
    const asked = await Promise.all(
      calls.map(async (call) => ({
        region: await (call.thisValue as sdk.EC2Client).config.region(),
        key: (await (call.thisValue as sdk.EC2Client).config.credentials()).accessKeyId,
        clusters: filtersOf(call)![0]!.Values,
      })),
    );
    expect(asked).toHaveLength(4);
    expect(asked).toEqual(
      expect.arrayContaining([
        { region: 'us-east-1', key: 'AKIAFAKE', clusters: ['a', 'b'] },
        { region: 'eu-west-1', key: 'AKIAFAKE', clusters: ['c'] },
        { region: 'us-east-1', key: 'AKIAFAKE', clusters: ['d'] },
        { region: 'us-east-1', key: 'AKIAOTHER', clusters: ['e'] },
      ]),
    );
  });

  it('reads every page of a batched describe', async () => {
    ec2
      .on(sdk.DescribeInstancesCommand)
      .resolvesOnce({ Reservations: [{ Instances: [instance('i-a1', 'a', 'p', 'm-1')] }], NextToken: 'page-2' })
      .resolvesOnce({ Reservations: [{ Instances: [instance('i-b1', 'b', 'p', 'm-1')] }] });
    const aws = provider();
    const [a, b] = await Promise.all([
      aws.describeMachines({ clusterId: 'a', region: 'us-east-1' }),
      aws.describeMachines({ clusterId: 'b', region: 'us-east-1' }),
    ]);
    expect(a.map((m) => m.id)).toEqual(['i-a1']);
    expect(b.map((m) => m.id)).toEqual(['i-b1']);
    const calls = ec2.commandCalls(sdk.DescribeInstancesCommand);
    expect(calls.map((c) => (c.args[0] as sdk.DescribeInstancesCommand).input.NextToken)).toEqual([
      undefined,
      'page-2',
    ]);
  });

  it('describes a cluster id or pool with EC2 wildcards alone, with the filters as given', async () => {
    ec2.on(sdk.DescribeInstancesCommand).callsFake(describeInstancesOf([]));
    const aws = provider();
    await Promise.all([
      aws.describeMachines({ clusterId: 'a*', region: 'us-east-1' }),
      aws.describeMachines({ clusterId: 'b', region: 'us-east-1', pool: 'p?' }),
      aws.describeMachines({ clusterId: 'c', region: 'us-east-1' }),
    ]);
    const filters = ec2.commandCalls(sdk.DescribeInstancesCommand).map(filtersOf);
    expect(filters).toHaveLength(3);
    expect(filters).toEqual(
      expect.arrayContaining([
        [expect.objectContaining({ Name: `tag:${TagKeys.cluster}`, Values: ['a*'] }), expect.anything()],
        [
          expect.objectContaining({ Name: `tag:${TagKeys.cluster}`, Values: ['b'] }),
          expect.objectContaining({ Name: `tag:${TagKeys.pool}`, Values: ['p?'] }),
          expect.anything(),
        ],
        [expect.objectContaining({ Name: `tag:${TagKeys.cluster}`, Values: ['c'] }), expect.anything()],
      ]),
    );
  });

  it('makes each describe alone with a batch window of 0', async () => {
    ec2.on(sdk.DescribeInstancesCommand).callsFake(describeInstancesOf([]));
    const aws = provider({ batchWindowMs: 0 });
    await Promise.all(['a', 'b'].map((clusterId) => aws.describeMachines({ clusterId, region: 'us-east-1' })));
    expect(ec2.commandCalls(sdk.DescribeInstancesCommand).map((c) => filtersOf(c)![0]!.Values)).toEqual([['a'], ['b']]);
  });

  it('fails a describe waiting in a batch when the provider closes', async () => {
    ec2.on(sdk.DescribeInstancesCommand).callsFake(describeInstancesOf([]));
    const aws = provider({ batchWindowMs: 1000 });
    const waiting = aws.describeMachines({ clusterId: 'a', region: 'us-east-1' }).catch((e: unknown) => e);
    await aws.close();
    expect(await waiting).toMatchObject({
      name: 'CloudError',
      code: 'TRANSIENT',
      message: 'the cloud provider was closed',
    });
    expect(ec2.commandCalls(sdk.DescribeInstancesCommand)).toHaveLength(0);
  });

  it('looks up the VPCs of networks being ensured at once in one call, each cluster getting its own', async () => {
    const vpc = (id: string, clusterId: string): sdk.Vpc => ({
      VpcId: id,
      CidrBlock: '10.0.0.0/16',
      Tags: [
        { Key: TagKeys.cluster, Value: clusterId },
        { Key: TagKeys.network, Value: 'network' },
      ],
    });
    ec2.on(sdk.DescribeVpcsCommand).resolves({ Vpcs: [vpc('vpc-b', 'b'), vpc('vpc-a', 'a')] });
    // Both networks exist already: their groups and subnets are described (one call each).
    ec2.on(sdk.DescribeSecurityGroupsCommand).callsFake((input: sdk.DescribeSecurityGroupsCommandInput) => {
      const vpcId = input.Filters!.find((f) => f.Name === 'vpc-id')!.Values![0]!;
      const names = input.Filters!.find((f) => f.Name === 'group-name')!.Values!;
      return {
        SecurityGroups: names.map((GroupName, i) => ({ GroupId: `sg-${vpcId}-${i}`, GroupName, VpcId: vpcId })),
      };
    });
    ec2.on(sdk.AuthorizeSecurityGroupIngressCommand).resolves({});
    ec2.on(sdk.DescribeSubnetsCommand).callsFake((input: sdk.DescribeSubnetsCommandInput) => {
      const vpcId = input.Filters![0]!.Values![0]!;
      return {
        Subnets: [
          { SubnetId: `subnet-${vpcId}-cp`, CidrBlock: '10.0.0.0/24', AvailabilityZone: 'us-east-1a' },
          { SubnetId: `subnet-${vpcId}-w`, CidrBlock: '10.0.64.0/20', AvailabilityZone: 'us-east-1a' },
        ],
      };
    });
    const aws = provider();
    const [a, b] = await Promise.all(
      ['a', 'b'].map((clusterId) => aws.ensureNetwork({ clusterId, region: 'us-east-1', zones: ['us-east-1a'] })),
    );
    expect(a).toMatchObject({ clusterId: 'a', networkId: 'vpc-a', workers: { subnets: [{ id: 'subnet-vpc-a-w' }] } });
    expect(b).toMatchObject({
      clusterId: 'b',
      networkId: 'vpc-b',
      controlPlane: { subnets: [{ id: 'subnet-vpc-b-cp' }] },
    });
    const vpcCalls = ec2.commandCalls(sdk.DescribeVpcsCommand);
    expect(vpcCalls).toHaveLength(1);
    expect((vpcCalls[0]!.args[0] as sdk.DescribeVpcsCommand).input.Filters).toEqual([
      { Name: `tag:${TagKeys.cluster}`, Values: ['a', 'b'] },
      { Name: `tag:${TagKeys.network}`, Values: ['network'] },
    ]);
    expect(ec2.commandCalls(sdk.DescribeSecurityGroupsCommand)).toHaveLength(2);
    expect(ec2.commandCalls(sdk.DescribeSubnetsCommand)).toHaveLength(2);
    expect(ec2.commandCalls(sdk.CreateSecurityGroupCommand)).toHaveLength(0);
  });

  it('describes nothing in a VPC it has just made: a new network is its creates and two VPC lookups', async () => {
    let made: sdk.Vpc | undefined;
    ec2.on(sdk.DescribeVpcsCommand).callsFake(() => ({ Vpcs: made ? [made] : [] }));
    ec2.on(sdk.CreateVpcCommand).callsFake((input: sdk.CreateVpcCommandInput) => {
      made = { VpcId: 'vpc-new', CidrBlock: input.CidrBlock, Tags: input.TagSpecifications![0]!.Tags };
      return { Vpc: made };
    });
    ec2.on(sdk.CreateSecurityGroupCommand).callsFake((input: sdk.CreateSecurityGroupCommandInput) => ({
      GroupId: `sg-${input.GroupName}`,
    }));
    ec2.on(sdk.AuthorizeSecurityGroupIngressCommand).resolves({});
    ec2.on(sdk.CreateSubnetCommand).callsFake((input: sdk.CreateSubnetCommandInput) => ({
      Subnet: {
        SubnetId: `subnet-${input.CidrBlock}`,
        CidrBlock: input.CidrBlock,
        AvailabilityZone: input.AvailabilityZone,
      },
    }));
    const network = await provider().ensureNetwork({
      clusterId: 'new',
      region: 'us-east-1',
      zones: ['us-east-1a', 'us-east-1b'],
    });
    expect(network.networkId).toBe('vpc-new');
    expect(network.controlPlane.securityGroupId).toBe('sg-fg-new-control-plane');
    expect(network.workers.subnets).toHaveLength(2);
    const counts = Object.fromEntries(
      (
        [
          'DescribeVpcsCommand',
          'CreateVpcCommand',
          'DescribeSecurityGroupsCommand',
          'CreateSecurityGroupCommand',
          'AuthorizeSecurityGroupIngressCommand',
          'DescribeSubnetsCommand',
          'CreateSubnetCommand',
        ] as const
      ).map((name) => [name, ec2.commandCalls(sdk[name] as never).length]),
    );
    expect(counts).toEqual({
      DescribeVpcsCommand: 2,
      CreateVpcCommand: 1,
      DescribeSecurityGroupsCommand: 0,
      CreateSecurityGroupCommand: 2,
      AuthorizeSecurityGroupIngressCommand: 2,
      DescribeSubnetsCommand: 0,
      CreateSubnetCommand: 4,
    });
    // Each new group is given every rule it needs in one call.
    for (const call of ec2.commandCalls(sdk.AuthorizeSecurityGroupIngressCommand))
      expect((call.args[0] as sdk.AuthorizeSecurityGroupIngressCommand).input.IpPermissions!.length).toBeGreaterThan(0);
  });
});
