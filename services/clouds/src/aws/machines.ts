import {
  DescribeInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Filter,
} from '@aws-sdk/client-ec2';
import { CloudError } from '../errors.js';
import type { CreateMachineInput, DescribeMachinesInput, Machine } from '../provider.js';
import { ec2ClientToken, machineTags, TagKeys } from '../tags.js';
import { ignoring, type Ec2Context } from './ec2.js';
import { ec2ErrorCode, liveStates, tagFilters, toMachine, toTags } from './mapping.js';

/**
 * Machines on EC2: RunInstances with a ClientToken, user data and TagSpecifications naming
 * cluster, pool, machine and role (on the instance and its volume); DescribeInstances by tag
 * filters; TerminateInstances.
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

  async describeMachines(input: DescribeMachinesInput): Promise<Machine[]> {
    return this.ctx.call('describeMachines', async () => {
      const filters: Filter[] = tagFilters({
        [TagKeys.cluster]: input.clusterId,
        ...(input.pool ? { [TagKeys.pool]: input.pool } : {}),
      });
      filters.push({
        Name: 'instance-state-name',
        Values: input.includeTerminated ? [...liveStates, 'terminated'] : liveStates,
      });
      const machines: Machine[] = [];
      let NextToken: string | undefined;
      do {
        const page = await this.ctx
          .client(input.region)
          .send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 1000, NextToken }));
        for (const reservation of page.Reservations ?? []) {
          for (const instance of reservation.Instances ?? []) machines.push(toMachine(input.region, instance));
        }
        NextToken = page.NextToken;
      } while (NextToken);
      return machines.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    });
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
