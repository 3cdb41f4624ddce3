/**
 * The EC2 calls the AWS adapter (`@fleetgraph/clouds`) makes, counted by the local cloud (a FAKE
 * cloud speaking EC2's Query API, started in-process; `fleetgraph_local_cloud_ec2_requests_total`
 * on its /metrics): a new network is its creates and two VPC lookups, shared with the other
 * clusters' made at the time; many clusters' machines are described in one call; replicas racing for
 * one network, and a network left half made, still end as one network.
 */
import { CreateSecurityGroupCommand, CreateVpcCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { createLocalProvider, LOCAL_CLOUD_CREDENTIALS, TagKeys, type CloudProvider } from '@fleetgraph/clouds';
import { createSqliteStore } from '@fleetgraph/kit/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from './local-cloud.js';
import { FIRST_SEED_IMAGE } from './testing.js';

const region = 'local-1';
const zones = ['local-1a', 'local-1b'];
let cloud: LocalCloud;
let store: ReturnType<typeof createSqliteStore>;
const providers: CloudProvider[] = [];
const provider = () => {
  const made = createLocalProvider({ endpoint: cloud.url, maxAttempts: 1 });
  providers.push(made);
  return made;
};

beforeAll(async () => {
  store = createSqliteStore({ file: ':memory:' });
  cloud = await startLocalCloud({ store, speed: 1000 });
});

afterAll(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await cloud?.close();
  await store?.close();
});

/** EC2 requests answered so far, by action. */
async function requests(): Promise<Record<string, number>> {
  const text = await (await fetch(`${cloud.url}/metrics`)).text();
  const byAction: Record<string, number> = {};
  for (const [, action, count] of text.matchAll(
    /^fleetgraph_local_cloud_ec2_requests_total\{action="([^"]+)",code="[^"]+"\} (\d+)/gm,
  ))
    byAction[action!] = (byAction[action!] ?? 0) + Number(count);
  return byAction;
}

/** The requests made while `run` runs, by action. */
async function counting(run: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await requests();
  await run();
  const after = await requests();
  return Object.fromEntries(
    Object.entries(after)
      .map(([action, n]) => [action, n - (before[action] ?? 0)] as const)
      .filter(([, n]) => n > 0),
  );
}

const unique = (name: string) => `${name}-${Math.random().toString(36).slice(2, 8)}`;

describe('AWS adapter: EC2 calls against the local cloud (a fake EC2)', () => {
  it('makes three new networks at once with their creates and VPC lookups shared between them, describing nothing in them', async () => {
    const aws = provider();
    const ids = [unique('net-a'), unique('net-b'), unique('net-c')];
    let networks: Awaited<ReturnType<CloudProvider['ensureNetwork']>>[] = [];
    const calls = await counting(async () => {
      networks = await Promise.all(ids.map((clusterId) => aws.ensureNetwork({ clusterId, region, zones })));
    });
    // The first lookups start together: one call. The second ones, after each create, share a
    // call with those whose creates returned within the batch window: 1 to 3 calls.
    const { DescribeVpcs, ...rest } = calls;
    expect(DescribeVpcs).toBeGreaterThanOrEqual(2);
    expect(DescribeVpcs).toBeLessThanOrEqual(4);
    expect(rest).toEqual({ CreateVpc: 3, CreateSecurityGroup: 6, AuthorizeSecurityGroupIngress: 6, CreateSubnet: 12 });
    // Ensured again, each finds what it made: the same ids.
    const again = await Promise.all(ids.map((clusterId) => aws.ensureNetwork({ clusterId, region, zones })));
    expect(again).toEqual(networks);
    expect(new Set(networks.map((n) => n.networkId)).size).toBe(3);
  });

  it('describes the machines of clusters asking at once in one call', async () => {
    const aws = provider();
    const [a, b] = [unique('machines-a'), unique('machines-b')];
    const made = await Promise.all(
      [a, a, b].map((clusterId, i) =>
        aws.createMachine({
          clientToken: `${clusterId}-${i}`,
          clusterId,
          pool: 'workers',
          machineName: `workers-${i}`,
          role: 'WORKER',
          region,
          zone: zones[0]!,
          instanceType: 't3.medium',
          imageId: FIRST_SEED_IMAGE.id,
        }),
      ),
    );
    let described: { id: string }[][] = [];
    const calls = await counting(async () => {
      described = await Promise.all(
        [a, b, unique('none')].map((clusterId) => aws.describeMachines({ clusterId, region })),
      );
    });
    expect(calls).toEqual({ DescribeInstances: 1 });
    expect(described.map((list) => list.map((m) => m.id).sort())).toEqual([
      [made[0]!.id, made[1]!.id].sort(),
      [made[2]!.id],
      [],
    ]);
  });

  it('brings two replicas making one network at the same time to the same network, one VPC kept', async () => {
    const clusterId = unique('race');
    const [one, other] = await Promise.all([
      provider().ensureNetwork({ clusterId, region, zones }),
      provider().ensureNetwork({ clusterId, region, zones }),
    ]);
    expect(other).toEqual(one);
    const ec2 = new EC2Client({ region, endpoint: cloud.url, credentials: { ...LOCAL_CLOUD_CREDENTIALS } });
    const { Vpcs = [] } = await ec2.send(
      new DescribeVpcsCommand({ Filters: [{ Name: `tag:${TagKeys.cluster}`, Values: [clusterId] }] }),
    );
    expect(Vpcs.map((v) => v.VpcId)).toEqual([one.networkId]);
    ec2.destroy();
  });

  it('finishes a network an earlier attempt left half made (its VPC and one group), describing what is there', async () => {
    const clusterId = unique('half');
    const ec2 = new EC2Client({ region, endpoint: cloud.url, credentials: { ...LOCAL_CLOUD_CREDENTIALS } });
    const { Vpc } = await ec2.send(
      new CreateVpcCommand({
        CidrBlock: '10.0.0.0/16',
        TagSpecifications: [
          {
            ResourceType: 'vpc',
            Tags: [
              { Key: TagKeys.cluster, Value: clusterId },
              { Key: TagKeys.network, Value: 'network' },
            ],
          },
        ],
      }),
    );
    const { GroupId } = await ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: `fg-${clusterId}-control-plane`,
        Description: 'left by an attempt that died',
        VpcId: Vpc!.VpcId!,
      }),
    );
    ec2.destroy();
    const aws = provider();
    let network: Awaited<ReturnType<CloudProvider['ensureNetwork']>> | undefined;
    const calls = await counting(async () => {
      network = await aws.ensureNetwork({ clusterId, region, zones });
    });
    expect(network).toMatchObject({ networkId: Vpc!.VpcId, controlPlane: { securityGroupId: GroupId } });
    expect(calls).toEqual({
      DescribeVpcs: 1,
      DescribeSecurityGroups: 1,
      CreateSecurityGroup: 1,
      AuthorizeSecurityGroupIngress: 2,
      DescribeSubnets: 1,
      CreateSubnet: 4,
    });
    expect(await aws.ensureNetwork({ clusterId, region, zones })).toEqual(network);
  });
});
