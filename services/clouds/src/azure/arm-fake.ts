import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createHttpHeaders,
  type HttpClient,
  type PipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';

/**
 * A FAKE of Azure Resource Manager, for tests: a local HTTP server that answers the subset of
 * ARM's REST API the Azure adapter uses (Microsoft.Compute virtual machines, sizes, usages,
 * SKUs, galleries and marketplace images; Microsoft.Network virtual networks, NSGs and NICs) the
 * way ARM answers: `{ error: { code, message } }` bodies with ARM's codes and statuses, and
 * long-running operations through `Azure-AsyncOperation` headers that report `InProgress`, then
 * `Succeeded` or `Failed`. It is not Azure: it keeps everything in memory, creates nothing, and
 * checks only what the adapter's correctness depends on.
 *
 * Over 400 lines: one fake of one API, for tests only; its routes share the resource maps.
 */

export interface ArmFakeOptions {
  subscriptionId?: string;
  resourceGroup?: string;
  /** Regions with zones 1, 2 and 3. @default ['eastus', 'westeurope'] */
  regions?: string[];
  /** Total regional vCPU limit per region. @default 100 */
  coresLimit?: number;
  /** How long asynchronous operations stay InProgress. @default 20 */
  operationDelayMs?: number;
  /**
   * The base URL that absolute URLs in responses (async-operation headers) use. Set it to the
   * https endpoint a client believes it talks to when requests reach the fake through an
   * `httpClient`. @default the fake's own http URL
   */
  publicUrl?: string;
  /** Refuse requests without a bearer token, as ARM does. @default true */
  requireAuth?: boolean;
}

export interface ArmFake {
  /** The fake's own `http://127.0.0.1:<port>` URL. */
  url: string;
  subscriptionId: string;
  resourceGroup: string;
  /** Sets the regional vCPU (`cores`) limit. */
  setCoresLimit(region: string, limit: number): void;
  /** Answers every request with 429 TooManyRequests until `stopThrottling`. */
  throttle(): void;
  stopThrottling(): void;
  /** The next VM creation's asynchronous operation fails with this ARM error. */
  failNextVmCreate(error: { code: string; message: string }): void;
  /** Puts an available gallery image (definition + version 1.0.0) into a region; returns its version id. */
  seedGalleryImage(input: { region: string; gallery: string; name: string }): string;
  /** How many requests it served, by method and path (for tests that count calls). */
  requests(): { method: string; path: string }[];
  close(): Promise<void>;
}

/** The VM sizes the fake offers everywhere: name, vCPUs, memory in MiB. */
export const ARM_FAKE_SIZES = [
  { name: 'Standard_B2s', cores: 2, memoryMiB: 4096 },
  { name: 'Standard_D2s_v5', cores: 2, memoryMiB: 8192 },
  { name: 'Standard_D4s_v5', cores: 4, memoryMiB: 16384 },
  { name: 'Standard_D8s_v5', cores: 8, memoryMiB: 32768 },
  { name: 'Standard_F4s_v2', cores: 4, memoryMiB: 8192 },
] as const;

/** The marketplace image the fake offers: Canonical's Ubuntu 24.04. */
export const ARM_FAKE_MARKETPLACE = {
  publisher: 'Canonical',
  offer: 'ubuntu-24_04-lts',
  sku: 'server',
  versions: ['24.04.202501140', '24.04.202502210'],
};

/** The message ARM gives when a deployment would exceed the regional vCPU quota. */
export function armQuotaMessage(region: string, limit: number, usage: number, required: number): string {
  return (
    `Operation could not be completed as it results in exceeding approved Total Regional Cores quota. ` +
    `Additional details - Deployment Model: Resource Manager, Location: ${region}, Current Limit: ${limit}, Current Usage: ${usage}, ` +
    `Additional Required: ${required}, (Minimum) New Limit Required: ${usage + required}. ` +
    `Submit a request for Quota increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView ` +
    `by specifying parameters listed in the ‘Details’ section for deployment to succeed. ` +
    `Please read more about quota limits at https://docs.microsoft.com/en-us/azure/azure-supportability/regional-quota-requests.`
  );
}

/** ARM's answer to a throttled request (429 TooManyRequests). */
export const ARM_THROTTLE_MESSAGE =
  'The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00. For more information, refer to - https://aka.ms/armthrottling';

class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: the fake handles ARM's request and resource bodies as free-form JSON, as ARM's REST API sends them
type Json = Record<string, any>;

interface Resource {
  id: string;
  name: string;
  /** `Microsoft.Compute/virtualMachines`, `Microsoft.Compute/galleries/images/versions`, ... */
  type: string;
  location: string;
  tags?: Record<string, string>;
  zones?: string[];
  properties: Json;
  /** What ARM does not show as properties: power state, generalized, replicated regions. */
  hidden: { power?: string; generalized?: boolean; replicated?: string[] };
}

interface Operation {
  id: string;
  doneAt: number;
  /** Applies the change when the operation completes; returns an error to fail it. */
  complete: () => { code: string; message: string } | undefined;
  result?: { status: 'Succeeded' } | { status: 'Failed'; error: { code: string; message: string } };
}

const fold = (s: string | undefined) => (s ?? '').replace(/\s+/g, '').toLowerCase();

/** Starts the fake on a free port. */
export async function startArmFake(options: ArmFakeOptions = {}): Promise<ArmFake> {
  const subscriptionId = options.subscriptionId ?? '00000000-0000-0000-0000-00000000fa6e';
  const resourceGroup = options.resourceGroup ?? 'fleetgraph-test';
  const regions = options.regions ?? ['eastus', 'westeurope'];
  const delay = options.operationDelayMs ?? 20;
  const requireAuth = options.requireAuth ?? true;
  const limits = new Map<string, number>();
  const resources = new Map<string, Resource>();
  const operations = new Map<string, Operation>();
  const log: { method: string; path: string }[] = [];
  let throttled = false;
  let failNextVm: { code: string; message: string } | null = null;
  let base = '';

  const rgPrefix = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/`;
  const key = (id: string) => id.toLowerCase();
  const get = (id: string) => resources.get(key(id));
  const sizeOf = (name: string) => ARM_FAKE_SIZES.find((s) => s.name.toLowerCase() === name.toLowerCase());
  const coresUsed = (region: string) =>
    [...resources.values()]
      .filter(
        (r) =>
          r.type === 'Microsoft.Compute/virtualMachines' &&
          fold(r.location) === fold(region) &&
          r.properties.provisioningState !== 'Deleting',
      )
      .reduce((sum, r) => sum + (sizeOf(r.properties.hardwareProfile?.vmSize ?? '')?.cores ?? 0), 0);
  const coresLimit = (region: string) => limits.get(fold(region)) ?? options.coresLimit ?? 100;

  function checkRegion(location: unknown): string {
    if (typeof location !== 'string' || !regions.some((r) => fold(r) === fold(location))) {
      throw new ArmError(
        400,
        'LocationNotAvailableForResourceType',
        `The provided location '${String(location)}' is not available for resource type. List of available regions for the resource type is '${regions.join(',')}'.`,
      );
    }
    return fold(location);
  }

  function startOperation(region: string, complete: Operation['complete']): string {
    const op: Operation = { id: randomUUID(), doneAt: Date.now() + delay, complete };
    operations.set(op.id, op);
    return `${base}/subscriptions/${subscriptionId}/providers/Microsoft.Compute/locations/${region}/operations/${op.id}?api-version=2024-07-01`;
  }

  function settle(op: Operation): void {
    if (op.result || Date.now() < op.doneAt) return;
    const error = op.complete();
    op.result = error ? { status: 'Failed', error } : { status: 'Succeeded' };
  }

  function view(r: Resource, expand: string | null): Json {
    const properties: Json = { ...r.properties };
    if (r.type === 'Microsoft.Compute/virtualMachines' && expand?.toLowerCase() === 'instanceview') {
      properties.instanceView = {
        statuses: [
          {
            code: `ProvisioningState/${String(r.properties.provisioningState).toLowerCase()}`,
            level: 'Info',
            displayStatus: `Provisioning ${String(r.properties.provisioningState).toLowerCase()}`,
          },
          ...(r.hidden.power
            ? [{ code: `PowerState/${r.hidden.power}`, level: 'Info', displayStatus: `VM ${r.hidden.power}` }]
            : []),
        ],
      };
    }
    if (r.type === 'Microsoft.Compute/galleries/images/versions' && expand?.toLowerCase() === 'replicationstatus') {
      const targets: { name: string }[] = r.properties.publishingProfile?.targetRegions ?? [];
      const replicated = r.hidden.replicated ?? [];
      const summary = targets.map((t) => ({
        region: t.name,
        state: replicated.includes(fold(t.name)) ? 'Completed' : 'Replicating',
        progress: replicated.includes(fold(t.name)) ? 100 : 40,
      }));
      properties.replicationStatus = {
        aggregatedState: summary.every((s) => s.state === 'Completed') ? 'Completed' : 'InProgress',
        summary,
      };
    }
    return {
      id: r.id,
      name: r.name,
      type: r.type,
      location: r.location,
      ...(r.tags ? { tags: r.tags } : {}),
      ...(r.zones ? { zones: r.zones } : {}),
      properties,
    };
  }

  /** Validation and side effects of a PUT, per resource type; returns the properties to store. */
  function put(
    type: string,
    id: string,
    name: string,
    body: Json,
    existing: Resource | undefined,
  ): { resource: Resource; complete: Operation['complete'] } {
    const location = checkRegion(body.location ?? existing?.location);
    const props: Json = { ...(body.properties ?? {}) };
    const resource: Resource = {
      id,
      name,
      type,
      location,
      ...(body.tags ? { tags: body.tags } : {}),
      ...(body.zones ? { zones: body.zones } : {}),
      properties: props,
      hidden: { ...(existing?.hidden ?? {}) },
    };
    let complete: Operation['complete'] = () => {
      resource.properties.provisioningState = 'Succeeded';
      return undefined;
    };
    switch (type) {
      case 'Microsoft.Network/networkSecurityGroups': {
        props.securityRules = (props.securityRules ?? []).map((rule: Json) => ({
          ...rule,
          id: `${id}/securityRules/${rule.name}`,
          properties: { ...rule.properties, provisioningState: 'Succeeded' },
        }));
        props.subnets = existing?.properties.subnets ?? [];
        break;
      }
      case 'Microsoft.Network/virtualNetworks': {
        const kept = new Set<string>();
        props.subnets = (props.subnets ?? []).map((subnet: Json) => {
          const subnetId = `${id}/subnets/${subnet.name}`;
          kept.add(key(subnetId));
          const nsgId: string | undefined = subnet.properties?.networkSecurityGroup?.id;
          if (nsgId && !get(nsgId))
            throw new ArmError(
              400,
              'InvalidResourceReference',
              `Resource ${nsgId} referenced by resource ${subnetId} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
            );
          const previous = (existing?.properties.subnets ?? []).find((s: Json) => key(s.id) === key(subnetId));
          return {
            id: subnetId,
            name: subnet.name,
            properties: {
              ...subnet.properties,
              ipConfigurations: previous?.properties.ipConfigurations ?? [],
              provisioningState: 'Succeeded',
            },
          };
        });
        for (const old of existing?.properties.subnets ?? []) {
          if (!kept.has(key(old.id)) && (old.properties.ipConfigurations ?? []).length > 0) {
            throw new ArmError(
              400,
              'InUseSubnetCannotBeDeleted',
              `Subnet ${old.name} is in use by ${old.properties.ipConfigurations[0].id} and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.`,
            );
          }
        }
        break;
      }
      case 'Microsoft.Network/networkInterfaces': {
        props.ipConfigurations = (props.ipConfigurations ?? []).map((config: Json, i: number) => {
          const subnetId: string | undefined = config.properties?.subnet?.id;
          const subnet = subnetId ? findSubnet(subnetId) : undefined;
          if (!subnet)
            throw new ArmError(
              400,
              'InvalidResourceReference',
              `Resource ${subnetId} referenced by resource ${id} was not found.`,
            );
          subnet.properties.ipConfigurations = [
            ...(subnet.properties.ipConfigurations ?? []).filter((c: Json) => !key(c.id).startsWith(key(id))),
            { id: `${id}/ipConfigurations/${config.name}` },
          ];
          return {
            id: `${id}/ipConfigurations/${config.name}`,
            name: config.name,
            properties: {
              ...config.properties,
              privateIPAddress: `10.0.${64 + i}.${4 + resources.size}`,
              provisioningState: 'Succeeded',
            },
          };
        });
        break;
      }
      case 'Microsoft.Compute/virtualMachines': {
        if (existing) break;
        const size = sizeOf(props.hardwareProfile?.vmSize ?? '');
        if (!size)
          throw new ArmError(
            400,
            'InvalidParameter',
            `The value ${props.hardwareProfile?.vmSize} provided for the VM size is not valid. The valid sizes in the current region are: ${ARM_FAKE_SIZES.map((s) => s.name).join(',')}. Find out more on the available VM sizes at https://aka.ms/azure-regionavailability.`,
          );
        const image: Json = props.storageProfile?.imageReference ?? {};
        if (image.id) {
          const version = get(image.id);
          if (!version || !(version.hidden.replicated ?? []).includes(location)) {
            throw new ArmError(
              404,
              'GalleryImageNotFound',
              `The gallery image ${image.id} is not available in ${location} region. Please contact image owner to replicate to this region, or change your requested region.`,
            );
          }
        } else if (image.publisher !== ARM_FAKE_MARKETPLACE.publisher || image.offer !== ARM_FAKE_MARKETPLACE.offer) {
          throw new ArmError(
            404,
            'PlatformImageNotFound',
            `The platform image '${image.publisher}:${image.offer}:${image.sku}:${image.version}' is not available. Verify that all fields in the storage profile are correct.`,
          );
        }
        for (const nic of props.networkProfile?.networkInterfaces ?? []) {
          if (!get(nic.id))
            throw new ArmError(
              400,
              'InvalidResourceReference',
              `Resource ${nic.id} referenced by resource ${id} was not found.`,
            );
        }
        const limit = coresLimit(location);
        const used = coresUsed(location);
        if (used + size.cores > limit)
          throw new ArmError(409, 'OperationNotAllowed', armQuotaMessage(location, limit, used, size.cores));
        props.vmId = randomUUID();
        props.timeCreated = new Date().toISOString();
        if (props.osProfile) delete props.osProfile.adminPassword;
        const failure = failNextVm;
        failNextVm = null;
        complete = () => {
          if (failure) {
            resource.properties.provisioningState = 'Failed';
            return failure;
          }
          resource.properties.provisioningState = 'Succeeded';
          resource.hidden.power = 'running';
        };
        break;
      }
      case 'Microsoft.Compute/galleries/images': {
        const gallery = get(id.slice(0, id.toLowerCase().lastIndexOf('/images/')));
        if (!gallery)
          throw new ArmError(
            404,
            'ParentResourceNotFound',
            `Can not perform requested operation on nested resource. Parent resource '${id.split('/').at(-3)}' not found.`,
          );
        break;
      }
      case 'Microsoft.Compute/galleries/images/versions': {
        const definition = get(id.slice(0, id.toLowerCase().lastIndexOf('/versions/')));
        if (!definition)
          throw new ArmError(
            404,
            'ParentResourceNotFound',
            `Can not perform requested operation on nested resource. Parent resource '${id.split('/').at(-3)}' not found.`,
          );
        if (!existing) {
          const vmId: string | undefined = props.storageProfile?.source?.virtualMachineId;
          const vm = vmId ? get(vmId) : undefined;
          if (!vm) throw new ArmError(400, 'InvalidParameter', `The source virtual machine ${vmId} does not exist.`);
          if (!vm.hidden.generalized)
            throw new ArmError(
              409,
              'OperationNotAllowed',
              `The source virtual machine ${vmId} must be generalized to create a generalized gallery image version.`,
            );
        }
        props.publishingProfile = {
          ...(props.publishingProfile ?? {}),
          publishedDate: existing?.properties.publishingProfile?.publishedDate ?? new Date().toISOString(),
        };
        const targets: string[] = (props.publishingProfile.targetRegions ?? []).map((t: Json) => checkRegion(t.name));
        complete = () => {
          resource.properties.provisioningState = 'Succeeded';
          resource.hidden.replicated = targets;
          return undefined;
        };
        break;
      }
    }
    props.provisioningState = existing ? 'Updating' : 'Creating';
    return { resource, complete };
  }

  function findSubnet(subnetId: string): Json | undefined {
    const vnetId = subnetId.slice(0, subnetId.toLowerCase().lastIndexOf('/subnets/'));
    return (get(vnetId)?.properties.subnets ?? []).find((s: Json) => key(s.id) === key(subnetId));
  }

  /** Deletion checks and cascades, per resource type. */
  function remove(r: Resource): () => void {
    switch (r.type) {
      case 'Microsoft.Network/virtualNetworks': {
        const inUse = (r.properties.subnets ?? []).find((s: Json) => (s.properties.ipConfigurations ?? []).length > 0);
        if (inUse)
          throw new ArmError(
            400,
            'InUseSubnetCannotBeDeleted',
            `Subnet ${inUse.name} is in use by ${inUse.properties.ipConfigurations[0].id} and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.`,
          );
        break;
      }
      case 'Microsoft.Network/networkSecurityGroups': {
        const user = [...resources.values()].find(
          (v) =>
            v.type === 'Microsoft.Network/virtualNetworks' &&
            (v.properties.subnets ?? []).some(
              (s: Json) => key(s.properties.networkSecurityGroup?.id ?? '') === key(r.id),
            ),
        );
        if (user)
          throw new ArmError(
            400,
            'InUseNetworkSecurityGroupCannotBeDeleted',
            `Network security group ${r.id} cannot be deleted because it is in use by the following resources: ${user.id}. In order to delete the Network security group, remove the association with the resource(s).`,
          );
        break;
      }
      case 'Microsoft.Network/networkInterfaces': {
        const vm = [...resources.values()].find(
          (v) =>
            v.type === 'Microsoft.Compute/virtualMachines' &&
            (v.properties.networkProfile?.networkInterfaces ?? []).some((n: Json) => key(n.id) === key(r.id)),
        );
        if (vm)
          throw new ArmError(
            400,
            'NicInUse',
            `Network Interface ${r.id} is used by existing resource ${vm.id}. In order to delete the network interface, it must be dissociated from the resource.`,
          );
        return () => {
          for (const config of r.properties.ipConfigurations ?? []) {
            const subnet = config.properties?.subnet?.id ? findSubnet(config.properties.subnet.id) : undefined;
            if (subnet)
              subnet.properties.ipConfigurations = (subnet.properties.ipConfigurations ?? []).filter(
                (c: Json) => !key(c.id).startsWith(key(r.id)),
              );
          }
          resources.delete(key(r.id));
        };
      }
      case 'Microsoft.Compute/galleries/images': {
        if ([...resources.keys()].some((k) => k.startsWith(`${key(r.id)}/versions/`))) {
          throw new ArmError(
            409,
            'CannotDeleteResource',
            `Can not delete resource before nested resources are deleted.`,
          );
        }
        break;
      }
      case 'Microsoft.Compute/virtualMachines': {
        r.properties.provisioningState = 'Deleting';
        return () => {
          resources.delete(key(r.id));
          for (const nic of r.properties.networkProfile?.networkInterfaces ?? []) {
            const nicResource = get(nic.id);
            if (nicResource && nic.properties?.deleteOption === 'Delete') remove(nicResource)();
          }
        };
      }
    }
    return () => {
      resources.delete(key(r.id));
    };
  }

  function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'x-ms-request-id': randomUUID(),
      ...headers,
    });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname.replace(/\/+$/, '');
    const method = (req.method ?? 'GET').toUpperCase();
    log.push({ method, path });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body: Json = text ? JSON.parse(text) : {};

    if (requireAuth && !/^Bearer \S+/.test(req.headers.authorization ?? '')) {
      throw new ArmError(401, 'AuthenticationFailed', 'Authentication failed. The Authorization header is missing.');
    }
    if (throttled) {
      throw new ArmError(429, 'TooManyRequests', ARM_THROTTLE_MESSAGE);
    }

    const subPrefix = `/subscriptions/${subscriptionId}/providers/Microsoft.Compute/`;
    let m = new RegExp(`^${subPrefix}locations/([^/]+)/operations/([^/]+)$`, 'i').exec(path);
    if (m) {
      const op = operations.get(m[2]!);
      if (!op) throw new ArmError(404, 'NotFound', `The operation ${m[2]} was not found.`);
      settle(op);
      return send(res, 200, {
        name: op.id,
        status: op.result?.status ?? 'InProgress',
        ...(op.result?.status === 'Failed' ? { error: op.result.error } : {}),
      });
    }
    m = new RegExp(`^${subPrefix}locations/([^/]+)/usages$`, 'i').exec(path);
    if (m) {
      const region = checkRegion(m[1]);
      return send(res, 200, {
        value: [
          {
            unit: 'Count',
            currentValue: coresUsed(region),
            limit: coresLimit(region),
            name: { value: 'cores', localizedValue: 'Total Regional vCPUs' },
          },
          {
            unit: 'Count',
            currentValue: [...resources.values()].filter(
              (r) => r.type === 'Microsoft.Compute/virtualMachines' && r.location === region,
            ).length,
            limit: 25000,
            name: { value: 'virtualMachines', localizedValue: 'Virtual Machines' },
          },
        ],
      });
    }
    m = new RegExp(`^${subPrefix}locations/([^/]+)/vmSizes$`, 'i').exec(path);
    if (m) {
      checkRegion(m[1]);
      return send(res, 200, {
        value: ARM_FAKE_SIZES.map((s) => ({
          name: s.name,
          numberOfCores: s.cores,
          memoryInMB: s.memoryMiB,
          osDiskSizeInMB: 1047552,
          resourceDiskSizeInMB: 0,
          maxDataDiskCount: 8,
        })),
      });
    }
    if (new RegExp(`^${subPrefix}skus$`, 'i').test(path)) {
      return send(res, 200, {
        value: ARM_FAKE_SIZES.map((s) => ({
          resourceType: 'virtualMachines',
          name: s.name,
          tier: 'Standard',
          size: s.name.replace(/^Standard_/, ''),
          locations: regions,
          locationInfo: regions.map((r) => ({ location: r, zones: ['1', '2', '3'] })),
          capabilities: [
            { name: 'vCPUs', value: String(s.cores) },
            { name: 'MemoryGB', value: String(s.memoryMiB / 1024) },
          ],
          restrictions: [],
        })),
      });
    }
    m = new RegExp(
      `^${subPrefix}locations/([^/]+)/publishers/([^/]+)/artifacttypes/vmimage/offers/([^/]+)/skus/([^/]+)/versions(?:/([^/]+))?$`,
      'i',
    ).exec(path);
    if (m) {
      const [, location, publisher, offer, sku, version] = m;
      checkRegion(location);
      const mp = ARM_FAKE_MARKETPLACE;
      const known = publisher === mp.publisher && offer === mp.offer && sku === mp.sku;
      const versions = known ? [...mp.versions] : [];
      const entry = (v: string) => ({
        name: v,
        location,
        id: `/Subscriptions/${subscriptionId}/Providers/Microsoft.Compute/Locations/${location}/Publishers/${publisher}/ArtifactTypes/VMImage/Offers/${offer}/Skus/${sku}/Versions/${v}`,
      });
      if (!version) {
        const ordered = url.searchParams.get('$orderby')?.includes('desc') ? versions.reverse() : versions;
        const top = Number(url.searchParams.get('$top') ?? ordered.length);
        return send(res, 200, ordered.slice(0, top).map(entry));
      }
      if (!versions.includes(version)) throw new ArmError(404, 'NotFound', `Artifact: VMImage was not found.`);
      return send(res, 200, {
        ...entry(version),
        properties: { osImage: { operatingSystem: 'Linux' }, hyperVGeneration: 'V2' },
      });
    }

    if (!path.toLowerCase().startsWith(rgPrefix.toLowerCase())) {
      if (path.toLowerCase().startsWith(`/subscriptions/${subscriptionId}/resourcegroups/`.toLowerCase())) {
        const rg = path.split('/')[4];
        throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${rg}' could not be found.`);
      }
      throw new ArmError(
        404,
        'InvalidResourceType',
        `The resource type could not be found in the namespace for api version.`,
      );
    }
    const rest = path.slice(rgPrefix.length).split('/');
    const namespace = rest.shift()!;
    const canonicalNs =
      namespace.toLowerCase() === 'microsoft.compute'
        ? 'Microsoft.Compute'
        : namespace.toLowerCase() === 'microsoft.network'
          ? 'Microsoft.Network'
          : namespace;
    const types: string[] = [];
    for (let i = 0; i < rest.length; i += 2) types.push(rest[i]!);
    const action = rest.length % 2 === 1 && method === 'POST' ? types.pop() : undefined;
    const idPath = action ? rest.slice(0, -1) : rest;

    // A list: an odd path (…/virtualMachines, …/galleries/g/images).
    if (idPath.length % 2 === 1) {
      if (method !== 'GET')
        throw new ArmError(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
      const listType = `${canonicalNs}/${idPath.filter((_, i) => i % 2 === 0).join('/')}`;
      const parent = `${rgPrefix}${namespace}/${idPath.slice(0, -1).join('/')}`.replace(/\/$/, '');
      const items = [...resources.values()].filter(
        (r) =>
          r.type.toLowerCase() === listType.toLowerCase() &&
          (idPath.length === 1 || key(r.id).startsWith(`${key(parent)}/`)),
      );
      return send(res, 200, { value: items.map((r) => view(r, url.searchParams.get('$expand'))) });
    }

    const id = `${rgPrefix}${canonicalNs}/${idPath.join('/')}`;
    const name = idPath.at(-1)!;
    const resourceType = `${canonicalNs}/${idPath.filter((_, i) => i % 2 === 0).join('/')}`;
    const existing = get(id);
    const notFound = () =>
      new ArmError(
        404,
        'ResourceNotFound',
        `The Resource '${canonicalNs}/${idPath.join('/')}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
      );

    if (action) {
      if (!existing) throw notFound();
      if (resourceType === 'Microsoft.Compute/virtualMachines' && action.toLowerCase() === 'deallocate') {
        const op = startOperation(existing.location, () => {
          existing.hidden.power = 'deallocated';
          return undefined;
        });
        return send(res, 202, undefined, { 'azure-asyncoperation': op });
      }
      if (resourceType === 'Microsoft.Compute/virtualMachines' && action.toLowerCase() === 'generalize') {
        if (existing.hidden.power !== 'deallocated' && existing.hidden.power !== 'stopped') {
          throw new ArmError(
            409,
            'OperationNotAllowed',
            `Operation 'generalize' is not allowed on VM '${existing.name}' since the VM is running. Please stop (deallocate) the VM and retry.`,
          );
        }
        existing.hidden.generalized = true;
        return send(res, 200);
      }
      throw new ArmError(400, 'InvalidRequestUri', `The action ${action} is not supported.`);
    }

    switch (method) {
      case 'GET': {
        if (!existing) throw notFound();
        return send(res, 200, view(existing, url.searchParams.get('$expand')));
      }
      case 'PUT': {
        const { resource, complete } = put(resourceType, id, name, body, existing);
        // ARM keeps properties a PUT may not change (the VM's identity) from the first create.
        if (existing && resourceType === 'Microsoft.Compute/virtualMachines') {
          resource.properties = {
            ...existing.properties,
            ...resource.properties,
            vmId: existing.properties.vmId,
            timeCreated: existing.properties.timeCreated,
          };
        }
        resources.set(key(id), resource);
        const op = startOperation(resource.location, complete);
        return send(res, existing ? 200 : 201, view(resource, null), { 'azure-asyncoperation': op });
      }
      case 'PATCH': {
        if (!existing) throw notFound();
        const merged: Json = {
          location: existing.location,
          tags: body.tags ?? existing.tags,
          ...(existing.zones ? { zones: existing.zones } : {}),
          properties: { ...existing.properties, ...(body.properties ?? {}) },
        };
        const { resource, complete } = put(resourceType, id, name, merged, existing);
        resources.set(key(id), resource);
        const op = startOperation(resource.location, complete);
        return send(res, 200, view(resource, null), { 'azure-asyncoperation': op });
      }
      case 'DELETE': {
        // ARM answers a DELETE of something that does not exist with 204.
        if (!existing) return send(res, 204);
        const complete = remove(existing);
        const op = startOperation(existing.location, () => {
          complete();
          return undefined;
        });
        return send(res, 202, undefined, { 'azure-asyncoperation': op, location: op });
      }
      default:
        throw new ArmError(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof ArmError) {
        send(
          res,
          error.status,
          { error: { code: error.code, message: error.message } },
          error.status === 429 ? { 'retry-after': '1' } : {},
        );
      } else {
        send(res, 500, { error: { code: 'InternalServerError', message: String(error) } });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  base = (options.publicUrl ?? url).replace(/\/+$/, '');

  return {
    url,
    subscriptionId,
    resourceGroup,
    setCoresLimit: (region, limit) => limits.set(fold(region), limit),
    throttle: () => {
      throttled = true;
    },
    stopThrottling: () => {
      throttled = false;
    },
    failNextVmCreate: (error) => {
      failNextVm = error;
    },
    seedGalleryImage: ({ region, gallery, name }) => {
      const galleryId = `${rgPrefix}Microsoft.Compute/galleries/${gallery}`;
      const definitionId = `${galleryId}/images/${name}`;
      const versionId = `${definitionId}/versions/1.0.0`;
      const at = new Date().toISOString();
      resources.set(key(galleryId), {
        id: galleryId,
        name: gallery,
        type: 'Microsoft.Compute/galleries',
        location: fold(region),
        properties: { provisioningState: 'Succeeded' },
        hidden: {},
      });
      resources.set(key(definitionId), {
        id: definitionId,
        name,
        type: 'Microsoft.Compute/galleries/images',
        location: fold(region),
        tags: { 'fleetgraph:os': 'ubuntu' },
        properties: {
          osType: 'Linux',
          osState: 'Generalized',
          hyperVGeneration: 'V2',
          identifier: { publisher: 'fleetgraph', offer: 'kubernetes-node', sku: name },
          provisioningState: 'Succeeded',
        },
        hidden: {},
      });
      resources.set(key(versionId), {
        id: versionId,
        name: '1.0.0',
        type: 'Microsoft.Compute/galleries/images/versions',
        location: fold(region),
        tags: { 'fleetgraph:os': 'ubuntu' },
        properties: {
          publishingProfile: { targetRegions: [{ name: fold(region), regionalReplicaCount: 1 }], publishedDate: at },
          storageProfile: {},
          provisioningState: 'Succeeded',
        },
        hidden: { replicated: [fold(region)] },
      });
      return versionId;
    },
    requests: () => [...log],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * An SDK `httpClient` that carries requests meant for an https ARM endpoint to the fake over
 * plain HTTP, so that the SDK keeps its bearer-token policy (which refuses http URLs) and the
 * fake sees a token. Pair it with a fake started with `publicUrl` set to that https endpoint.
 */
export function armFakeHttpClient(fakeUrl: string): HttpClient {
  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      const target = new URL(request.url);
      const to = new URL(`${target.pathname}${target.search}`, fakeUrl);
      const headers: Record<string, string> = {};
      for (const [name, value] of request.headers) headers[name] = value;
      const body =
        typeof request.body === 'string'
          ? request.body
          : request.body == null
            ? undefined
            : JSON.stringify(request.body);
      const response = await fetch(to, { method: request.method, headers, ...(body !== undefined ? { body } : {}) });
      const responseHeaders = createHttpHeaders();
      for (const [name, value] of response.headers) responseHeaders.set(name, value);
      return { request, status: response.status, headers: responseHeaders, bodyAsText: await response.text() };
    },
  };
}
