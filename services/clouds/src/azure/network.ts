import type { SecurityRule } from '@azure/arm-network';
import { DEFAULT_NETWORK_CIDR, ingressRules, networkNames, planSubnets, type IngressRule } from '../network-plan.js';
import {
  NodeRoles,
  type ClusterNetwork,
  type EnsureNetworkInput,
  type NetworkDomain,
  type NodeRole,
} from '../provider.js';
import { safeName, TagKeys } from '../tags.js';
import type { ArmContext } from './arm.js';

/**
 * A cluster network on Azure: a VNet `fg-<cluster>-net` PUT with a control-plane and a worker
 * subnet, each behind its own NSG; subnets span zones, as Azure's do.
 */
export class AzureNetworks {
  constructor(private readonly arm: ArmContext) {}

  async ensureNetwork(input: EnsureNetworkInput): Promise<ClusterNetwork> {
    const cidr = input.cidr ?? DEFAULT_NETWORK_CIDR;
    const plan = planSubnets(cidr, null, 'AZURE');
    const names = networkNames(input.clusterId);
    const cidrOf = (role: NodeRole) => plan.find((p) => p.role === role)!.cidr;

    return this.arm.call('ensureNetwork', async () => {
      const nsgIds = {} as Record<NodeRole, string>;
      for (const role of NodeRoles) {
        const nsg = await this.arm.network.networkSecurityGroups.beginCreateOrUpdateAndWait(
          this.arm.rg,
          names.securityGroup(role),
          {
            location: input.region,
            tags: { [TagKeys.cluster]: input.clusterId, [TagKeys.network]: role },
            securityRules: toSecurityRules(ingressRules(role, input), {
              CONTROL_PLANE: cidrOf('CONTROL_PLANE'),
              WORKER: cidrOf('WORKER'),
            }),
          },
          this.arm.poll,
        );
        nsgIds[role] = nsg.id!;
      }
      // The VNet is PUT with its subnets: one idempotent call that converges the whole network.
      const vnet = await this.arm.network.virtualNetworks.beginCreateOrUpdateAndWait(
        this.arm.rg,
        names.network,
        {
          location: input.region,
          tags: { [TagKeys.cluster]: input.clusterId, [TagKeys.network]: 'network' },
          addressSpace: { addressPrefixes: [cidr] },
          subnets: plan.map((p) => ({
            name: names.subnet(p.role, null),
            addressPrefix: p.cidr,
            networkSecurityGroup: { id: nsgIds[p.role] },
          })),
        },
        this.arm.poll,
      );
      const domain = (role: NodeRole): NetworkDomain => {
        const subnet = (vnet.subnets ?? []).find((s) => s.name === names.subnet(role, null));
        return {
          role,
          securityGroupId: nsgIds[role],
          subnets: [
            { id: subnet?.id ?? `${vnet.id}/subnets/${names.subnet(role, null)}`, zone: null, cidr: cidrOf(role) },
          ],
        };
      };
      return {
        clusterId: input.clusterId,
        region: input.region,
        networkId: vnet.id!,
        cidr,
        controlPlane: domain('CONTROL_PLANE'),
        workers: domain('WORKER'),
      };
    });
  }

  async deleteNetwork(input: { clusterId: string; region: string }): Promise<void> {
    const names = networkNames(input.clusterId);
    await this.arm.call('deleteNetwork', async () => {
      // ARM answers a DELETE of a missing resource with 204: nothing to ignore.
      await this.arm.network.virtualNetworks.beginDeleteAndWait(this.arm.rg, names.network, this.arm.poll);
      for (const role of NodeRoles) {
        await this.arm.network.networkSecurityGroups.beginDeleteAndWait(
          this.arm.rg,
          names.securityGroup(role),
          this.arm.poll,
        );
      }
    });
  }
}

/**
 * NSG rules for a role. NSGs cannot name each other, so node sources are the subnets' ranges;
 * a final deny of VirtualNetwork overrides Azure's default allow-all within the VNet, which is
 * what keeps the two domains apart.
 */
function toSecurityRules(rules: IngressRule[], subnetCidrs: Record<NodeRole, string>): SecurityRule[] {
  const allowed = rules.map(
    (rule, i): SecurityRule => ({
      name: `${safeName(rule.description, 60)}-${i}`,
      description: rule.description,
      priority: 100 + i * 10,
      direction: 'Inbound',
      access: 'Allow',
      protocol: rule.protocol === 'all' ? '*' : rule.protocol === 'tcp' ? 'Tcp' : 'Udp',
      sourcePortRange: '*',
      destinationAddressPrefix: '*',
      destinationPortRange:
        rule.protocol === 'all'
          ? '*'
          : rule.fromPort === rule.toPort
            ? String(rule.fromPort)
            : `${rule.fromPort}-${rule.toPort}`,
      sourceAddressPrefix:
        'role' in rule.source
          ? subnetCidrs[rule.source.role]
          : rule.source.cidr === '0.0.0.0/0'
            ? '*'
            : rule.source.cidr,
    }),
  );
  return [
    ...allowed,
    {
      name: 'deny-other-vnet-inbound',
      description: 'nothing else from the virtual network',
      priority: 4000,
      direction: 'Inbound',
      access: 'Deny',
      protocol: '*',
      sourcePortRange: '*',
      destinationAddressPrefix: '*',
      destinationPortRange: '*',
      sourceAddressPrefix: 'VirtualNetwork',
    },
  ];
}
