import { randomBytes } from 'node:crypto';
import { ComputeManagementClient, type GalleryImageVersion, type VirtualMachine } from '@azure/arm-compute';
import { NetworkManagementClient, type SecurityRule } from '@azure/arm-network';
import { RestError, type HttpClient, type PipelinePolicy } from '@azure/core-rest-pipeline';
import { ClientSecretCredential, DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { CloudError } from '../errors.js';
import { DEFAULT_NETWORK_CIDR, ingressRules, networkNames, planSubnets, type IngressRule } from '../network-plan.js';
import type {
  CloudImage,
  CloudProvider,
  ClusterNetwork,
  CopyImageInput,
  CreateImageFromMachineInput,
  CreateMachineInput,
  DescribeMachinesInput,
  EnsureNetworkInput,
  ImageStatus,
  InstanceType,
  Machine,
  MachineState,
  NetworkDomain,
  NodeRole,
  Quota,
  Region,
  Tags,
} from '../provider.js';
import { NodeRoles } from '../provider.js';
import { canonicalJson, hasTags, machineTags, safeName, sha256, TagKeys } from '../tags.js';
import { armErrorCode, toAzureCloudError } from './azure-errors.js';

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

const IMAGE_VERSION = '1.0.0';
const GALLERY_IMAGE_ID = /\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)\/images\/([^/]+)\/versions\/([^/]+)$/i;
const VM_ID = /\/providers\/Microsoft\.Compute\/virtualMachines\/([^/]+)$/i;
/** A marketplace image: `publisher:offer:sku:version`. */
const URN = /^([^:/]+):([^:/]+):([^:/]+):([^:/]+)$/;

/** Azure writes regions as `eastus` or `East US`; compare them folded. */
function sameRegion(a: string | undefined, b: string | undefined): boolean {
  const fold = (s: string | undefined) => (s ?? '').replace(/\s+/g, '').toLowerCase();
  return fold(a) === fold(b);
}

function isNotFound(error: unknown): boolean {
  const e = error as { statusCode?: number } | null;
  const code = armErrorCode(error);
  return e?.statusCode === 404 || code === 'ResourceNotFound' || code === 'NotFound' || code === 'ParentResourceNotFound';
}

async function orNull<T>(promise: Promise<T>): Promise<T | null> {
  try {
    return await promise;
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/**
 * Turns every ARM error answer into a RestError carrying ARM's own code and message. The
 * SDKs' paging helpers would otherwise replace the message with their own ("Pagination failed
 * with unexpected statusCode 429"), and conditions must show what ARM said.
 */
const armErrorPolicy: PipelinePolicy = {
  name: 'fleetgraphArmErrorPolicy',
  async sendRequest(request, next) {
    const response = await next(request);
    if (response.status < 400) return response;
    let error: { code?: unknown; message?: unknown } | undefined;
    try {
      error = (JSON.parse(response.bodyAsText ?? '') as { error?: { code?: unknown; message?: unknown } }).error;
    } catch {
      return response;
    }
    if (typeof error?.code !== 'string') return response;
    throw new RestError(typeof error.message === 'string' ? error.message : `ARM answered ${response.status}`, {
      code: error.code,
      statusCode: response.status,
      request,
      response,
    });
  },
};

function roleOf(value: string | undefined): NodeRole {
  return (NodeRoles as readonly string[]).includes(value ?? '') ? (value as NodeRole) : 'WORKER';
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
 */
export function createAzureProvider(options: AzureProviderOptions): CloudProvider {
  return new AzureProvider(options);
}

class AzureProvider implements CloudProvider {
  readonly type = 'AZURE' as const;
  private readonly compute: ComputeManagementClient;
  private readonly network: NetworkManagementClient;
  private readonly rg: string;
  private readonly poll: { updateIntervalInMs: number };
  private regionsCache: { at: number; regions: Region[] } | null = null;

  constructor(private readonly options: AzureProviderOptions) {
    this.rg = options.resourceGroup;
    this.poll = { updateIntervalInMs: options.pollIntervalMs ?? 5000 };
    const credential =
      options.credential ??
      (options.credentials
        ? new ClientSecretCredential(options.credentials.tenantId, options.credentials.clientId, options.credentials.clientSecret)
        : new DefaultAzureCredential());
    const insecure = options.endpoint?.startsWith('http://') ?? false;
    const common = {
      ...(options.httpClient ? { httpClient: options.httpClient } : {}),
      retryOptions: { maxRetries: options.maxRetries ?? 3 },
      ...(insecure ? { allowInsecureConnection: true } : {}),
    };
    this.compute = new ComputeManagementClient(credential, options.subscriptionId, {
      ...common,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    });
    this.network = new NetworkManagementClient(credential, options.subscriptionId, {
      ...common,
      ...(options.endpoint ? { endpoint: options.endpoint, $host: options.endpoint } : {}),
    });
    // Before retries (no phase: per call), so that it sees the last answer after them.
    this.compute.pipeline.addPolicy(armErrorPolicy);
    this.network.pipeline.addPolicy(armErrorPolicy);
    if (insecure) {
      // The bearer-token policy refuses plain HTTP; a local fake over http takes no token.
      this.compute.pipeline.removePolicy({ name: 'bearerTokenAuthenticationPolicy' });
      this.network.pipeline.removePolicy({ name: 'bearerTokenAuthenticationPolicy' });
    }
  }

  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toAzureCloudError(error, operation);
    }
  }

  private invalid(operation: string, message: string, cloudCode?: string): CloudError {
    return new CloudError({ code: 'INVALID_CONFIGURATION', message, cloud: 'AZURE', operation, ...(cloudCode ? { cloudCode } : {}) });
  }

  private armId(provider: string, type: string, name: string): string {
    return `/subscriptions/${this.options.subscriptionId}/resourceGroups/${this.rg}/providers/${provider}/${type}/${name}`;
  }

  // ---------------------------------------------------------------- offerings

  async regions(): Promise<Region[]> {
    // The SKU list is large and changes rarely.
    if (this.regionsCache && Date.now() - this.regionsCache.at < 3_600_000) return this.regionsCache.regions;
    return this.call('regions', async () => {
      const zonesByRegion = new Map<string, Set<string>>();
      for await (const sku of this.compute.resourceSkus.list()) {
        if (sku.resourceType !== 'virtualMachines') continue;
        for (const info of sku.locationInfo ?? []) {
          if (!info.location) continue;
          const name = info.location.toLowerCase();
          const zones = zonesByRegion.get(name) ?? new Set<string>();
          for (const zone of info.zones ?? []) zones.add(zone);
          zonesByRegion.set(name, zones);
        }
      }
      const regions = [...zonesByRegion].map(([name, zones]) => ({ name, zones: [...zones].sort() })).sort((a, b) => a.name.localeCompare(b.name));
      this.regionsCache = { at: Date.now(), regions };
      return regions;
    });
  }

  async instanceTypes(region: string): Promise<InstanceType[]> {
    return this.call('instanceTypes', async () => {
      const sizes = await collect(this.compute.virtualMachineSizes.list(region));
      return sizes
        .filter((s) => s.name && s.numberOfCores && s.memoryInMB)
        .map((s) => ({ name: s.name!, vcpus: s.numberOfCores!, memoryMiB: s.memoryInMB! }))
        .sort((a, b) => a.vcpus - b.vcpus || a.memoryMiB - b.memoryMiB || a.name.localeCompare(b.name));
    });
  }

  async quota(region: string): Promise<Quota | null> {
    return this.call('quota', async () => {
      for await (const usage of this.compute.usage.list(region)) {
        // "Total Regional vCPUs": the limit that "exceeding approved Total Regional Cores quota" names.
        if (usage.name.value === 'cores') return { region, vcpuLimit: usage.limit, vcpuUsed: usage.currentValue };
      }
      return null;
    });
  }

  // ---------------------------------------------------------------- networks

  async ensureNetwork(input: EnsureNetworkInput): Promise<ClusterNetwork> {
    const cidr = input.cidr ?? DEFAULT_NETWORK_CIDR;
    const plan = planSubnets(cidr, null, 'AZURE');
    const names = networkNames(input.clusterId);
    const cidrOf = (role: NodeRole) => plan.find((p) => p.role === role)!.cidr;

    return this.call('ensureNetwork', async () => {
      const nsgIds = {} as Record<NodeRole, string>;
      for (const role of NodeRoles) {
        const nsg = await this.network.networkSecurityGroups.beginCreateOrUpdateAndWait(
          this.rg,
          names.securityGroup(role),
          {
            location: input.region,
            tags: { [TagKeys.cluster]: input.clusterId, [TagKeys.network]: role },
            securityRules: toSecurityRules(ingressRules(role, input), { CONTROL_PLANE: cidrOf('CONTROL_PLANE'), WORKER: cidrOf('WORKER') }),
          },
          this.poll,
        );
        nsgIds[role] = nsg.id!;
      }
      // The VNet is PUT with its subnets: one idempotent call that converges the whole network.
      const vnet = await this.network.virtualNetworks.beginCreateOrUpdateAndWait(
        this.rg,
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
        this.poll,
      );
      const domain = (role: NodeRole): NetworkDomain => {
        const subnet = (vnet.subnets ?? []).find((s) => s.name === names.subnet(role, null));
        return {
          role,
          securityGroupId: nsgIds[role],
          subnets: [{ id: subnet?.id ?? `${vnet.id}/subnets/${names.subnet(role, null)}`, zone: null, cidr: cidrOf(role) }],
        };
      };
      return { clusterId: input.clusterId, region: input.region, networkId: vnet.id!, cidr, controlPlane: domain('CONTROL_PLANE'), workers: domain('WORKER') };
    });
  }

  async deleteNetwork(input: { clusterId: string; region: string }): Promise<void> {
    const names = networkNames(input.clusterId);
    await this.call('deleteNetwork', async () => {
      // ARM answers a DELETE of a missing resource with 204: nothing to ignore.
      await this.network.virtualNetworks.beginDeleteAndWait(this.rg, names.network, this.poll);
      for (const role of NodeRoles) {
        await this.network.networkSecurityGroups.beginDeleteAndWait(this.rg, names.securityGroup(role), this.poll);
      }
    });
  }

  // ---------------------------------------------------------------- images

  private galleryName(region: string): string {
    return `${(this.options.galleryPrefix ?? 'fleetgraph').replace(/[^A-Za-z0-9_.]/g, '_')}_${region.replace(/[^A-Za-z0-9]/g, '').toLowerCase()}`;
  }

  private toImage(region: string, name: string, version: GalleryImageVersion, description?: string): CloudImage | null {
    const targets = version.publishingProfile?.targetRegions ?? [];
    if (!targets.some((t) => sameRegion(t.name, region)) && !sameRegion(version.location, region)) return null;
    const replication = version.replicationStatus?.summary?.find((s) => sameRegion(s.region, region));
    let status: ImageStatus;
    let statusMessage: string | undefined;
    if (version.provisioningState === 'Failed' || replication?.state === 'Failed') {
      status = 'failed';
      statusMessage = replication?.details;
    } else if (replication?.state === 'Completed' || (!replication && version.provisioningState === 'Succeeded')) {
      status = 'available';
    } else {
      status = 'pending';
    }
    return {
      id: version.id!,
      name,
      region,
      status,
      ...(statusMessage ? { statusMessage } : {}),
      ...(description ? { description } : {}),
      tags: { ...(version.tags ?? {}) },
      ...(version.publishingProfile?.publishedDate ? { createdAt: new Date(version.publishingProfile.publishedDate).toISOString() } : {}),
      ownerId: this.options.subscriptionId,
    };
  }

  /** Every gallery image (definition + its version) of this resource group targeting `region`. */
  private async galleryImages(region: string, keep: (name: string, tags: Tags) => boolean): Promise<CloudImage[]> {
    const images: CloudImage[] = [];
    for await (const gallery of this.compute.galleries.listByResourceGroup(this.rg)) {
      for await (const definition of this.compute.galleryImages.listByGallery(this.rg, gallery.name!)) {
        if (!keep(definition.name!, definition.tags ?? {})) continue;
        const version = await orNull(
          this.compute.galleryImageVersions.get(this.rg, gallery.name!, definition.name!, IMAGE_VERSION, { expand: 'ReplicationStatus' }),
        );
        const image = version && this.toImage(region, definition.name!, version, definition.description);
        if (image) images.push(image);
      }
    }
    return images;
  }

  private async describeGalleryVersion(region: string, id: string): Promise<CloudImage | null> {
    const [, , gallery, image, version] = GALLERY_IMAGE_ID.exec(id) ?? [];
    if (!gallery || !image || !version) return null;
    const found = await orNull(this.compute.galleryImageVersions.get(this.rg, gallery, image, version, { expand: 'ReplicationStatus' }));
    return found && this.toImage(region, image, found);
  }

  private async describeMarketplace(region: string, urn: string): Promise<CloudImage | null> {
    const [, publisher, offer, sku, version] = URN.exec(urn)!;
    let resolved = version!;
    if (resolved === 'latest') {
      const versions = await orNull(this.compute.virtualMachineImages.list(region, publisher!, offer!, sku!, { top: 1, orderby: 'name desc' }));
      if (!versions?.[0]?.name) return null;
      resolved = versions[0].name;
    }
    const image = await orNull(this.compute.virtualMachineImages.get(region, publisher!, offer!, sku!, resolved));
    return image ? { id: urn, name: urn, region, status: 'available', tags: { ...(image.tags ?? {}) }, ownerId: publisher! } : null;
  }

  async describeImage(region: string, idOrName: string): Promise<CloudImage | null> {
    return this.call('describeImage', async () => {
      if (URN.test(idOrName)) return this.describeMarketplace(region, idOrName);
      if (GALLERY_IMAGE_ID.test(idOrName)) return this.describeGalleryVersion(region, idOrName);
      return (await this.galleryImages(region, (name) => name === idOrName))[0] ?? null;
    });
  }

  async findImages(region: string, tags: Tags): Promise<CloudImage[]> {
    return this.call('findImages', () => this.galleryImages(region, (_name, have) => hasTags(have, tags)));
  }

  async copyImage(input: CopyImageInput): Promise<CloudImage> {
    const op = 'copyImage';
    return this.call(op, async () => {
      if (URN.test(input.sourceImageId)) {
        // Marketplace images are in every region already.
        const image = await this.describeMarketplace(input.region, input.sourceImageId);
        if (!image) throw this.invalid(op, `marketplace image ${input.sourceImageId} is not offered in ${input.region}`, 'PlatformImageNotFound');
        return image;
      }
      const [, , gallery, image, versionName] = GALLERY_IMAGE_ID.exec(input.sourceImageId) ?? [];
      if (!gallery || !image || !versionName) throw this.invalid(op, `${input.sourceImageId} is not an Azure Compute Gallery image version id`);
      const version = await orNull(this.compute.galleryImageVersions.get(this.rg, gallery, image, versionName));
      if (!version) throw new CloudError({ code: 'NOT_FOUND', message: `image ${input.sourceImageId} does not exist`, cloud: 'AZURE', operation: op, cloudCode: 'ResourceNotFound' });
      const targets = version.publishingProfile?.targetRegions ?? [];
      if (!targets.some((t) => sameRegion(t.name, input.region))) {
        // Adding a target region is how a gallery image is copied; replication is awaited.
        await this.compute.galleryImageVersions.update(
          this.rg,
          gallery,
          image,
          versionName,
          { publishingProfile: { targetRegions: [...targets, { name: input.region, regionalReplicaCount: 1 }] } },
          this.poll,
        );
      }
      const copied = await this.describeGalleryVersion(input.region, input.sourceImageId);
      return copied ?? { id: input.sourceImageId, name: image, region: input.region, status: 'pending', tags: input.tags ?? {} };
    });
  }

  async createImageFromMachine(input: CreateImageFromMachineInput): Promise<CloudImage> {
    const op = 'createImageFromMachine';
    const vmName = VM_ID.exec(input.machineId)?.[1] ?? input.machineId;
    const gallery = this.galleryName(input.region);
    const tags = input.tags ?? {};
    return this.call(op, async () => {
      const existing = await orNull(this.compute.galleryImageVersions.get(this.rg, gallery, input.name, IMAGE_VERSION, { expand: 'ReplicationStatus' }));
      if (existing) return this.toImage(input.region, input.name, existing, input.description)!;

      const vm = await orNull(this.compute.virtualMachines.get(this.rg, vmName));
      if (!vm) throw new CloudError({ code: 'NOT_FOUND', message: `machine ${input.machineId} does not exist`, cloud: 'AZURE', operation: op, cloudCode: 'ResourceNotFound' });

      await this.compute.galleries.createOrUpdate(this.rg, gallery, { location: input.region, description: 'Fleetgraph machine images' }, this.poll);
      await this.compute.galleryImages.createOrUpdate(
        this.rg,
        gallery,
        input.name,
        {
          location: input.region,
          tags,
          description: input.description,
          osType: 'Linux',
          osState: 'Generalized',
          hyperVGeneration: 'V2',
          identifier: { publisher: 'fleetgraph', offer: 'kubernetes-node', sku: input.name },
        },
        this.poll,
      );
      // A generalized image needs a deallocated, generalized source VM.
      await this.compute.virtualMachines.deallocate(this.rg, vmName, this.poll);
      await this.compute.virtualMachines.generalize(this.rg, vmName);
      const version = await this.compute.galleryImageVersions.createOrUpdate(
        this.rg,
        gallery,
        input.name,
        IMAGE_VERSION,
        {
          location: input.region,
          tags,
          publishingProfile: { targetRegions: [{ name: input.region, regionalReplicaCount: 1 }] },
          storageProfile: { source: { virtualMachineId: vm.id! } },
        },
        this.poll,
      );
      return (
        (await this.describeGalleryVersion(input.region, version.id!)) ?? {
          id: version.id!,
          name: input.name,
          region: input.region,
          status: 'pending',
          tags,
        }
      );
    });
  }

  async deleteImage(region: string, imageId: string): Promise<void> {
    await this.call('deleteImage', async () => {
      const [, , gallery, image, versionName] = GALLERY_IMAGE_ID.exec(imageId) ?? [];
      if (!gallery || !image || !versionName) return;
      const version = await orNull(this.compute.galleryImageVersions.get(this.rg, gallery, image, versionName));
      if (!version) return;
      const others = (version.publishingProfile?.targetRegions ?? []).filter((t) => !sameRegion(t.name, region));
      if (others.length > 0 && !sameRegion(version.location, region)) {
        await this.compute.galleryImageVersions.update(this.rg, gallery, image, versionName, { publishingProfile: { targetRegions: others } }, this.poll);
        return;
      }
      await this.compute.galleryImageVersions.delete(this.rg, gallery, image, versionName, this.poll);
      await this.compute.galleryImages.delete(this.rg, gallery, image, this.poll);
    });
  }

  // ---------------------------------------------------------------- machines

  private toMachine(vm: VirtualMachine, powerState?: string): Machine {
    const tags = { ...(vm.tags ?? {}) };
    let state: MachineState;
    switch (vm.provisioningState) {
      case 'Creating':
        state = 'pending';
        break;
      case 'Deleting':
        state = 'terminating';
        break;
      case 'Failed':
        state = 'failed';
        break;
      default:
        state = 'running';
    }
    if (state === 'running' && powerState) {
      const power: Record<string, MachineState> = {
        starting: 'pending',
        running: 'running',
        stopping: 'stopping',
        stopped: 'stopped',
        deallocating: 'stopping',
        deallocated: 'stopped',
      };
      state = power[powerState] ?? state;
    }
    const failure = vm.instanceView?.statuses?.find((s) => s.level === 'Error');
    const image = vm.storageProfile?.imageReference;
    return {
      id: vm.id!,
      name: tags[TagKeys.machine] ?? vm.name!,
      clusterId: tags[TagKeys.cluster] ?? '',
      pool: tags[TagKeys.pool] ?? '',
      role: roleOf(tags[TagKeys.role]),
      region: vm.location,
      zone: vm.zones?.[0] ?? '',
      instanceType: vm.hardwareProfile?.vmSize ?? '',
      imageId: image?.id ?? (image?.publisher ? `${image.publisher}:${image.offer}:${image.sku}:${image.version}` : ''),
      state,
      ...(failure?.message ? { stateReason: failure.message } : {}),
      ...(vm.timeCreated ? { launchedAt: new Date(vm.timeCreated).toISOString() } : {}),
      tags,
    };
  }

  async createMachine(input: CreateMachineInput): Promise<Machine> {
    const op = 'createMachine';
    // The VM's name is the client token's: ARM's PUT is idempotent by name, so a retried create
    // lands on the first VM whatever else it says. The machine name is the host name.
    const vmName = `fg-${sha256(input.clientToken).slice(0, 24)}`;
    return this.call(op, async () => {
      // Without a cluster network, a shared one per region (resource names are unique per resource group, not per region).
      const network = input.network ?? (await this.ensureNetwork({ clusterId: `default-${input.region}`, region: input.region, zones: [input.zone] }));
      const domain = input.role === 'CONTROL_PLANE' ? network.controlPlane : network.workers;
      const subnetId = domain.subnets[0]?.id;
      if (!subnetId) throw this.invalid(op, `the network of cluster ${network.clusterId} has no ${input.role} subnet`);
      const { clientToken: _token, network: _network, ...request } = input;
      const requestHash = sha256(canonicalJson({ ...request, subnetId })).slice(0, 16);

      const existing = await orNull(this.compute.virtualMachines.get(this.rg, vmName));
      if (existing) {
        if (existing.tags?.[TagKeys.request] !== requestHash) {
          throw this.invalid(op, `machine ${vmName} was created with this client token for another request`, 'IdempotentParameterMismatch');
        }
        return this.toMachine(existing);
      }

      const tags = { ...input.tags, ...machineTags(input), [TagKeys.request]: requestHash };
      const nic = await this.network.networkInterfaces.beginCreateOrUpdateAndWait(
        this.rg,
        `${vmName}-nic`,
        { location: input.region, tags, ipConfigurations: [{ name: 'ipconfig1', subnet: { id: subnetId }, privateIPAllocationMethod: 'Dynamic' }] },
        this.poll,
      );
      const match = URN.exec(input.imageId);
      const adminUsername = this.options.adminUsername ?? 'fleetgraph';
      const vm = await this.compute.virtualMachines.createOrUpdate(
        this.rg,
        vmName,
        {
          location: input.region,
          zones: input.zone ? [input.zone] : undefined,
          tags,
          hardwareProfile: { vmSize: input.instanceType },
          storageProfile: {
            imageReference: match ? { publisher: match[1], offer: match[2], sku: match[3], version: match[4] } : { id: input.imageId },
            osDisk: { createOption: 'FromImage', deleteOption: 'Delete', managedDisk: { storageAccountType: 'StandardSSD_LRS' } },
          },
          osProfile: {
            computerName: safeName(input.machineName, 63),
            adminUsername,
            ...(this.options.sshPublicKey
              ? {
                  linuxConfiguration: {
                    disablePasswordAuthentication: true,
                    ssh: { publicKeys: [{ path: `/home/${adminUsername}/.ssh/authorized_keys`, keyData: this.options.sshPublicKey }] },
                  },
                }
              : { adminPassword: `${randomBytes(18).toString('base64url')}aA1!` }),
            ...(input.userData ? { customData: Buffer.from(input.userData, 'utf8').toString('base64') } : {}),
          },
          networkProfile: { networkInterfaces: [{ id: nic.id!, primary: true, deleteOption: 'Delete' }] },
        },
        this.poll,
      );
      return this.toMachine(vm);
    });
  }

  async describeMachines(input: DescribeMachinesInput): Promise<Machine[]> {
    return this.call('describeMachines', async () => {
      const wanted = { [TagKeys.cluster]: input.clusterId, ...(input.pool ? { [TagKeys.pool]: input.pool } : {}) };
      const vms = await collect(this.compute.virtualMachines.list(this.rg));
      return vms
        .filter((vm) => hasTags(vm.tags ?? {}, wanted) && sameRegion(vm.location, input.region))
        .map((vm) => this.toMachine(vm))
        .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    });
  }

  async describeMachine(_region: string, machineId: string): Promise<Machine | null> {
    const vmName = VM_ID.exec(machineId)?.[1] ?? machineId;
    return this.call('describeMachine', async () => {
      const vm = await orNull(this.compute.virtualMachines.get(this.rg, vmName, { expand: 'instanceView' }));
      if (!vm) return null;
      const power = vm.instanceView?.statuses?.find((s) => s.code?.startsWith('PowerState/'))?.code?.slice('PowerState/'.length);
      return this.toMachine(vm, power);
    });
  }

  async deleteMachine(_region: string, machineId: string): Promise<void> {
    const vmName = VM_ID.exec(machineId)?.[1] ?? machineId;
    await this.call('deleteMachine', async () => {
      // The NIC and OS disk go with the VM (deleteOption); the NIC is deleted again in case the
      // create stopped between the NIC and the VM.
      await this.compute.virtualMachines.delete(this.rg, vmName, this.poll);
      await this.network.networkInterfaces.beginDeleteAndWait(this.rg, `${vmName}-nic`, this.poll);
    });
  }

  async close(): Promise<void> {}
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
      destinationPortRange: rule.protocol === 'all' ? '*' : rule.fromPort === rule.toPort ? String(rule.fromPort) : `${rule.fromPort}-${rule.toPort}`,
      sourceAddressPrefix: 'role' in rule.source ? subnetCidrs[rule.source.role] : rule.source.cidr === '0.0.0.0/0' ? '*' : rule.source.cidr,
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
