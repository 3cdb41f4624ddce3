import {
  DescribeInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Filter,
} from '@aws-sdk/client-ec2';
import { CloudError } from '../errors.js';
import type { CreateMachineInput, DescribeMachinesInput, Machine } from '../provider.js';
import { ec2ClientToken, machineTags, TagKeys } from '../tags.js';
import { hasFilterWildcard, ignoring, type Ec2Context } from './ec2.js';
import { ec2ErrorCode, liveStates, tagFilters, toMachine, toTags } from './mapping.js';

/**
 * Machines on EC2: RunInstances with a ClientToken, user data and TagSpecifications naming
 * cluster, pool, machine and role (on the instance and its volume); DescribeInstances by tag
 * filters, many clusters' in one call; TerminateInstances.
 */
export class AwsMachines {
  constructor(private readonly ctx: Ec2Context) {}

  async createMachine(input: CreateMachineInput): Promise<Machine> {
    const op = 'createMachine';
    let placement: { SubnetId: string; SecurityGroupIds: string[] } | { Placement: { AvailabilityZone: string } };
    if (input.network) {
      const domain = input.role === 'CONTROL_PLANE' ? input.network.controlPlane : input.network.workers;
      const subnet = domain.subnets.find((s) => s.zone === input.zone);
      if (!subnet)
        throw this.ctx.invalid(
          op,
          `the network of cluster ${input.network.clusterId} has no ${input.role} subnet in zone ${input.zone}`,
        );
      placement = { SubnetId: subnet.id, SecurityGroupIds: [domain.securityGroupId] };
    } else {
      placement = { Placement: { AvailabilityZone: input.zone } };
    }
    const tags = toTags({ ...input.tags, ...machineTags(input), Name: input.machineName });
    return this.ctx.call(op, async () => {
      const { Instances = [] } = await this.ctx.client(input.region).send(
        new RunInstancesCommand({
          ClientToken: ec2ClientToken(input.clientToken),
          ImageId: input.imageId,
          InstanceType: input.instanceType as never,
          MinCount: 1,
          MaxCount: 1,
          ...placement,
          ...(input.userData ? { UserData: Buffer.from(input.userData, 'utf8').toString('base64') } : {}),
          MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
          TagSpecifications: [
            { ResourceType: 'instance', Tags: tags },
            { ResourceType: 'volume', Tags: tags },
          ],
        }),
      );
      if (!Instances[0])
        throw new CloudError({
          code: 'TRANSIENT',
          message: 'RunInstances returned no instance',
          cloud: this.ctx.cloud,
          operation: op,
        });
      return toMachine(input.region, Instances[0]);
    });
  }

  /**
   * A cluster's machines. Describes of many clusters in one region that arrive within the
   * batch window are one DescribeInstances call (one filter value per cluster), whose instances
   * are handed back to each by their cluster tag; a failure of that call fails each of them,
   * with EC2's error. A cluster id or pool with EC2 wildcards (`*`, `?`) is described alone.
   */
  async describeMachines(input: DescribeMachinesInput): Promise<Machine[]> {
    return this.ctx.call('describeMachines', async () => {
      const states = input.includeTerminated ? [...liveStates, 'terminated'] : liveStates;
      let machines: Machine[];
      if (hasFilterWildcard(input.clusterId) || (input.pool !== undefined && hasFilterWildcard(input.pool))) {
        const filters: Filter[] = tagFilters({
          [TagKeys.cluster]: input.clusterId,
          ...(input.pool ? { [TagKeys.pool]: input.pool } : {}),
        });
        filters.push({ Name: 'instance-state-name', Values: states });
        machines = await this.describeInstances(input.region, filters);
      } else {
        const key = `describeMachines\n${input.region}\n${states.join()}`;
        const ofCluster = await this.ctx.batches.call(key, input, (batch) => this.describeClusters(batch, states));
        machines = input.pool ? ofCluster.filter((m) => m.pool === input.pool) : ofCluster;
      }
      return machines.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    });
  }

  /** The machines of each cluster of a batch (one region, the same states), in one series of calls. */
  private async describeClusters(batch: readonly DescribeMachinesInput[], states: string[]): Promise<Machine[][]> {
    const clusterIds = [...new Set(batch.map((input) => input.clusterId))];
    const machines = await this.describeInstances(batch[0]!.region, [
      { Name: `tag:${TagKeys.cluster}`, Values: clusterIds },
      { Name: 'instance-state-name', Values: states },
    ]);
    const byCluster = new Map<string, Machine[]>();
    for (const machine of machines) {
      const list = byCluster.get(machine.clusterId);
      if (list) list.push(machine);
      else byCluster.set(machine.clusterId, [machine]);
    }
    // Each caller gets machines of its own (two callers of one cluster share nothing).
    const seen = new Set<string>();
    return batch.map(({ clusterId }) => {
      const list = byCluster.get(clusterId) ?? [];
      if (seen.has(clusterId)) return list.map((m) => ({ ...m, tags: { ...m.tags } }));
      seen.add(clusterId);
      return list;
    });
  }

  private async describeInstances(region: string, filters: Filter[]): Promise<Machine[]> {
    const machines: Machine[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.ctx
        .client(region)
        .send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 1000, NextToken }));
      for (const reservation of page.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) machines.push(toMachine(region, instance));
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return machines;
  }

  async describeMachine(region: string, machineId: string): Promise<Machine | null> {
    return this.ctx.call('describeMachine', async () => {
      try {
        const { Reservations = [] } = await this.ctx
          .client(region)
          .send(new DescribeInstancesCommand({ InstanceIds: [machineId] }));
        const instance = Reservations.flatMap((r) => r.Instances ?? [])[0];
        return instance ? toMachine(region, instance) : null;
      } catch (error) {
        if (ec2ErrorCode(error) === 'InvalidInstanceID.NotFound') return null;
        throw error;
      }
    });
  }

  async deleteMachine(region: string, machineId: string): Promise<void> {
    await this.ctx.call('deleteMachine', () =>
      ignoring(['InvalidInstanceID.NotFound'], () =>
        this.ctx.client(region).send(new TerminateInstancesCommand({ InstanceIds: [machineId] })),
      ),
    );
  }
}
