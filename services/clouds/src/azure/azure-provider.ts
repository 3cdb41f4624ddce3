import type { HttpClient } from '@azure/core-rest-pipeline';
import type { TokenCredential } from '@azure/identity';
import type {
  CloudImage,
  CloudProvider,
  ClusterNetwork,
  CopyImageInput,
  CreateImageFromMachineInput,
  CreateMachineInput,
  DescribeMachinesInput,
  EnsureNetworkInput,
  InstanceType,
  Machine,
  Quota,
  Region,
  Tags,
} from '../provider.js';
import { ArmContext } from './arm.js';
import { AzureImages } from './images.js';
import { AzureMachines } from './machines.js';
import { AzureNetworks } from './network.js';
import { AzureOfferings } from './offerings.js';

export interface AzureServicePrincipal {
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

export interface AzureProviderOptions {
  subscriptionId: string;
  /** The resource group that holds everything this provider makes (it must exist). */
  resourceGroup: string;
  /** The region used for account-wide calls. */
  region: string;
  /** Prefix of the per-region Azure Compute Galleries that hold images. @default 'fleetgraph' */
  galleryPrefix?: string;
  /** A service principal; without it and without `credential`, DefaultAzureCredential. */
  credentials?: AzureServicePrincipal;
  /** Any TokenCredential; wins over `credentials`. */
  credential?: TokenCredential;
  /**
   * ARM's endpoint. @default 'https://management.azure.com'. An `http://` endpoint (a local
   * fake) drops the bearer-token policy, which refuses to send tokens over plain HTTP.
   */
  endpoint?: string;
  /** The transport, e.g. one that routes to a local ARM fake. @default the SDK's */
  httpClient?: HttpClient;
  /** Polling interval of long-running operations when ARM sends no Retry-After. @default 5000 */
  pollIntervalMs?: number;
  /** Retries of the SDK pipeline (429 honouring Retry-After, 5xx, network). @default 3 */
  maxRetries?: number;
  /** The admin user on machines. @default 'fleetgraph' */
  adminUsername?: string;
  /** An SSH public key for the admin user; without it, password login is set with a random, unstored password. */
  sshPublicKey?: string;
}

/**
 * The Azure adapter: @azure/arm-compute for machines, images and sizes, @azure/arm-network for
 * what a VM cannot do without (a virtual network, network security groups and a NIC per VM).
 *
 * - A cluster network is a VNet `fg-<cluster>-net` with a control-plane and a worker subnet,
 *   each behind its own NSG; subnets span zones, as Azure's do.
 * - A machine is a VM named from a hash of its client token (its host name is the machine name);
 *   ARM's PUT is idempotent by name, so a retried create finds the first VM, and a retry with
 *   other input is refused, as EC2 refuses it. Its NIC and OS disk are deleted with it.
 * - Images live in per-region Azure Compute Galleries (`<prefix>_<region>`): an image is a
 *   gallery image definition with one version; copying to a region adds that region to the
 *   version's target regions, which is how Azure replicates images.
 * - Long-running operations are awaited.
 *
 * It is made of one part per resource, over one set of ARM clients (`arm.ts`): offerings
 * (`offerings.ts`), networks (`network.ts`), images (`images.ts`) and machines
 * (`machines.ts`); `mapping.ts` classifies ARM's errors and maps VM and image states.
 */
export function createAzureProvider(options: AzureProviderOptions): CloudProvider {
  return new AzureProvider(options);
}

class AzureProvider implements CloudProvider {
  readonly type = 'AZURE' as const;
  private readonly offerings: AzureOfferings;
  private readonly networks: AzureNetworks;
  private readonly images: AzureImages;
  private readonly machines: AzureMachines;

  constructor(options: AzureProviderOptions) {
    const arm = new ArmContext(options);
    this.offerings = new AzureOfferings(arm);
    this.networks = new AzureNetworks(arm);
    this.images = new AzureImages(arm);
    this.machines = new AzureMachines(arm, this.networks);
  }

  regions(): Promise<Region[]> {
    return this.offerings.regions();
  }
  instanceTypes(region: string): Promise<InstanceType[]> {
    return this.offerings.instanceTypes(region);
  }
  quota(region: string): Promise<Quota | null> {
    return this.offerings.quota(region);
  }

  ensureNetwork(input: EnsureNetworkInput): Promise<ClusterNetwork> {
    return this.networks.ensureNetwork(input);
  }
  deleteNetwork(input: { clusterId: string; region: string }): Promise<void> {
    return this.networks.deleteNetwork(input);
  }

  describeImage(region: string, idOrName: string): Promise<CloudImage | null> {
    return this.images.describeImage(region, idOrName);
  }
  findImages(region: string, tags: Tags): Promise<CloudImage[]> {
    return this.images.findImages(region, tags);
  }
  copyImage(input: CopyImageInput): Promise<CloudImage> {
    return this.images.copyImage(input);
  }
  createImageFromMachine(input: CreateImageFromMachineInput): Promise<CloudImage> {
    return this.images.createImageFromMachine(input);
  }
  deleteImage(region: string, imageId: string): Promise<void> {
    return this.images.deleteImage(region, imageId);
  }

  createMachine(input: CreateMachineInput): Promise<Machine> {
    return this.machines.createMachine(input);
  }
  describeMachines(input: DescribeMachinesInput): Promise<Machine[]> {
    return this.machines.describeMachines(input);
  }
  describeMachine(region: string, machineId: string): Promise<Machine | null> {
    return this.machines.describeMachine(region, machineId);
  }
  deleteMachine(region: string, machineId: string): Promise<void> {
    return this.machines.deleteMachine(region, machineId);
  }

  async close(): Promise<void> {}
}
