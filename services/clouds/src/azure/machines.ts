import { randomBytes } from 'node:crypto';
import type { VirtualMachine } from '@azure/arm-compute';
import type { NetworkInterface } from '@azure/arm-network';
import type { CreateMachineInput, DescribeMachinesInput, Machine } from '../provider.js';
import { canonicalJson, hasTags, machineTags, safeName, sha256, TagKeys } from '../tags.js';
import { collect, orNull, URN, vmNameOf, type ArmContext } from './arm.js';
import { sameRegion, toMachine } from './mapping.js';
import type { AzureNetworks } from './network.js';

/**
 * Machines on Azure: a VM named from a hash of its client token (its host name is the machine
 * name), with a NIC in its role's subnet and the user data as custom data. ARM's PUT is
 * idempotent by name, so a retried create finds the first VM; the hash of the input is tagged,
 * so a retry with other input is refused, as EC2 refuses it. NIC and OS disk go with the VM.
 */
export class AzureMachines {
  constructor(
    private readonly arm: ArmContext,
    /** For the shared network of machines created without a cluster network. */
    private readonly networks: AzureNetworks,
  ) {}

  async createMachine(input: CreateMachineInput): Promise<Machine> {
    const op = 'createMachine';
    // The VM's name is the client token's: ARM's PUT is idempotent by name, so a retried create
    // lands on the first VM whatever else it says. The machine name is the host name.
    const vmName = `fg-${sha256(input.clientToken).slice(0, 24)}`;
    return this.arm.call(op, async () => {
      // Without a cluster network, a shared one per region (resource names are unique per resource
      // group, not per region).
      const network =
        input.network ??
        (await this.networks.ensureNetwork({
          clusterId: `default-${input.region}`,
          region: input.region,
          zones: [input.zone],
        }));
      const domain = input.role === 'CONTROL_PLANE' ? network.controlPlane : network.workers;
      const subnetId = domain.subnets[0]?.id;
      if (!subnetId)
        throw this.arm.invalid(op, `the network of cluster ${network.clusterId} has no ${input.role} subnet`);
      const { clientToken: _token, network: _network, ...request } = input;
      const requestHash = sha256(canonicalJson({ ...request, subnetId })).slice(0, 16);

      const existing = await orNull(this.arm.compute.virtualMachines.get(this.arm.rg, vmName));
      if (existing) {
        if (existing.tags?.[TagKeys.request] !== requestHash) {
          throw this.arm.invalid(
            op,
            `machine ${vmName} was created with this client token for another request`,
            'IdempotentParameterMismatch',
          );
        }
        const made = await orNull(this.arm.network.networkInterfaces.get(this.arm.rg, `${vmName}-nic`));
        return toMachine(existing, undefined, primaryAddress(made));
      }

      const tags = { ...input.tags, ...machineTags(input), [TagKeys.request]: requestHash };
      const nic = await this.arm.network.networkInterfaces.beginCreateOrUpdateAndWait(
        this.arm.rg,
        `${vmName}-nic`,
        {
          location: input.region,
          tags,
          ipConfigurations: [{ name: 'ipconfig1', subnet: { id: subnetId }, privateIPAllocationMethod: 'Dynamic' }],
        },
        this.arm.poll,
      );
      const match = URN.exec(input.imageId);
      const adminUsername = this.arm.options.adminUsername ?? 'fleetgraph';
      const vm = await this.arm.compute.virtualMachines.createOrUpdate(
        this.arm.rg,
        vmName,
        {
          location: input.region,
          zones: input.zone ? [input.zone] : undefined,
          tags,
          hardwareProfile: { vmSize: input.instanceType },
          storageProfile: {
            imageReference: match
              ? { publisher: match[1], offer: match[2], sku: match[3], version: match[4] }
              : { id: input.imageId },
            osDisk: {
              createOption: 'FromImage',
              deleteOption: 'Delete',
              managedDisk: { storageAccountType: 'StandardSSD_LRS' },
            },
          },
          osProfile: {
            computerName: safeName(input.machineName, 63),
            adminUsername,
            ...(this.arm.options.sshPublicKey
              ? {
                  linuxConfiguration: {
                    disablePasswordAuthentication: true,
                    ssh: {
                      publicKeys: [
                        { path: `/home/${adminUsername}/.ssh/authorized_keys`, keyData: this.arm.options.sshPublicKey },
                      ],
                    },
                  },
                }
              : { adminPassword: `${randomBytes(18).toString('base64url')}aA1!` }),
            ...(input.userData ? { customData: Buffer.from(input.userData, 'utf8').toString('base64') } : {}),
          },
          networkProfile: { networkInterfaces: [{ id: nic.id!, primary: true, deleteOption: 'Delete' }] },
        },
        this.arm.poll,
      );
      return toMachine(vm, undefined, primaryAddress(nic));
    });
  }

  async describeMachines(input: DescribeMachinesInput): Promise<Machine[]> {
    return this.arm.call('describeMachines', async () => {
      const wanted = { [TagKeys.cluster]: input.clusterId, ...(input.pool ? { [TagKeys.pool]: input.pool } : {}) };
      // A VM's address is its NIC's: every NIC of the resource group in one list, beside the VMs.
      const [vms, nics] = await Promise.all([
        collect(this.arm.compute.virtualMachines.list(this.arm.rg)),
        collect(this.arm.network.networkInterfaces.list(this.arm.rg)),
      ]);
      const addresses = new Map(nics.map((nic) => [nic.id?.toLowerCase(), primaryAddress(nic)]));
      return vms
        .filter((vm) => hasTags(vm.tags ?? {}, wanted) && sameRegion(vm.location, input.region))
        .map((vm) => toMachine(vm, undefined, addresses.get(primaryNicId(vm))))
        .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    });
  }

  async describeMachine(_region: string, machineId: string): Promise<Machine | null> {
    const vmName = vmNameOf(machineId);
    return this.arm.call('describeMachine', async () => {
      const vm = await orNull(this.arm.compute.virtualMachines.get(this.arm.rg, vmName, { expand: 'instanceView' }));
      if (!vm) return null;
      const power = vm.instanceView?.statuses
        ?.find((s) => s.code?.startsWith('PowerState/'))
        ?.code?.slice('PowerState/'.length);
      const nic = await orNull(this.arm.network.networkInterfaces.get(this.arm.rg, `${vmName}-nic`));
      return toMachine(vm, power, primaryAddress(nic));
    });
  }

  async deleteMachine(_region: string, machineId: string): Promise<void> {
    const vmName = vmNameOf(machineId);
    await this.arm.call('deleteMachine', async () => {
      // The NIC and OS disk go with the VM (deleteOption); the NIC is deleted again in case the
      // create stopped between the NIC and the VM.
      await this.arm.compute.virtualMachines.delete(this.arm.rg, vmName, this.arm.poll);
      await this.arm.network.networkInterfaces.beginDeleteAndWait(this.arm.rg, `${vmName}-nic`, this.arm.poll);
    });
  }
}

/** The private address of a NIC's primary IP configuration (ARM assigns a dynamic one when the NIC is made). */
function primaryAddress(nic: NetworkInterface | null | undefined): string | undefined {
  const configs = nic?.ipConfigurations ?? [];
  return (configs.find((c) => c.primary) ?? configs[0])?.privateIPAddress ?? undefined;
}

/** The id of a VM's primary NIC, lower-cased (ARM ids are case-insensitive). */
function primaryNicId(vm: VirtualMachine): string | undefined {
  const nics = vm.networkProfile?.networkInterfaces ?? [];
  return (nics.find((n) => n.primary) ?? nics[0])?.id?.toLowerCase();
}
