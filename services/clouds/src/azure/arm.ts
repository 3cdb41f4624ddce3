import { ComputeManagementClient } from '@azure/arm-compute';
import { NetworkManagementClient } from '@azure/arm-network';
import { RestError, type PipelinePolicy } from '@azure/core-rest-pipeline';
import { ClientSecretCredential, DefaultAzureCredential } from '@azure/identity';
import { CloudError } from '../errors.js';
import type { AzureProviderOptions } from './azure-provider.js';
import { isNotFound, toAzureCloudError } from './mapping.js';

/** A gallery image version's id: resource group, gallery, image definition, version. */
export const GALLERY_IMAGE_ID =
  /\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)\/images\/([^/]+)\/versions\/([^/]+)$/i;
/** A marketplace image: `publisher:offer:sku:version`. */
export const URN = /^([^:/]+):([^:/]+):([^:/]+):([^:/]+)$/;
const VM_ID = /\/providers\/Microsoft\.Compute\/virtualMachines\/([^/]+)$/i;

/** A VM's name from its id (a machine id), or the name itself. */
export function vmNameOf(machineId: string): string {
  return VM_ID.exec(machineId)?.[1] ?? machineId;
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

/**
 * What the Azure adapter's parts share: the options, the compute and network clients of one
 * subscription, the resource group everything lives in, how long-running operations are
 * polled, and running a call with what it throws classified.
 */
export class ArmContext {
  readonly compute: ComputeManagementClient;
  readonly network: NetworkManagementClient;
  /** The resource group that holds everything. */
  readonly rg: string;
  /** Polling of long-running operations. */
  readonly poll: { updateIntervalInMs: number };

  constructor(readonly options: AzureProviderOptions) {
    this.rg = options.resourceGroup;
    this.poll = { updateIntervalInMs: options.pollIntervalMs ?? 5000 };
    const credential =
      options.credential ??
      (options.credentials
        ? new ClientSecretCredential(
            options.credentials.tenantId,
            options.credentials.clientId,
            options.credentials.clientSecret,
          )
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

  /** Runs ARM calls and classifies what they throw. */
  async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toAzureCloudError(error, operation);
    }
  }

  invalid(operation: string, message: string, cloudCode?: string): CloudError {
    return new CloudError({
      code: 'INVALID_CONFIGURATION',
      message,
      cloud: 'AZURE',
      operation,
      ...(cloudCode ? { cloudCode } : {}),
    });
  }
}

/** What `promise` resolves to, or null when ARM answers that it does not exist. */
export async function orNull<T>(promise: Promise<T>): Promise<T | null> {
  try {
    return await promise;
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
