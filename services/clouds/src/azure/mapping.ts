import type { GalleryImageVersion, VirtualMachine } from '@azure/arm-compute';
import {
  classifyCloudCode,
  messageOf,
  toCloudError,
  type CloudCodeTable,
  type CloudError,
  type CloudErrorCode,
} from '../errors.js';
import type { CloudImage, ImageStatus, Machine, MachineState } from '../provider.js';
import { machineOf } from '../tags.js';

/**
 * What ARM says, in the provider interface's terms: its error codes classified, its VM and
 * image version states mapped to the interface's.
 */

// ------------------------------------------------------------------ errors

/**
 * ARM error codes (the `error.code` of ARM's `{ error: { code, message } }` bodies and of failed
 * asynchronous operations) by classification. `OperationNotAllowed` is quota only when its
 * message says so; otherwise it is a request ARM refuses.
 */
const armCodes: CloudCodeTable = {
  QuotaExceeded: 'QUOTA_EXCEEDED',
  OperationNotAllowed: 'INVALID_CONFIGURATION',
  SubscriptionQuotaExceeded: 'QUOTA_EXCEEDED',

  TooManyRequests: 'RATE_LIMITED',
  SubscriptionRequestsThrottled: 'RATE_LIMITED',
  ResourceRequestsThrottled: 'RATE_LIMITED',
  RequestThrottled: 'RATE_LIMITED',

  AuthorizationFailed: 'UNAUTHORIZED',
  AuthenticationFailed: 'UNAUTHORIZED',
  InvalidAuthenticationToken: 'UNAUTHORIZED',
  InvalidAuthenticationTokenTenant: 'UNAUTHORIZED',
  ExpiredAuthenticationToken: 'UNAUTHORIZED',
  LinkedAuthorizationFailed: 'UNAUTHORIZED',
  SubscriptionNotFound: 'UNAUTHORIZED',
  MissingSubscriptionRegistration: 'UNAUTHORIZED',
  CredentialUnavailableError: 'UNAUTHORIZED',
  AuthenticationError: 'UNAUTHORIZED',

  SkuNotAvailable: 'RESOURCES_DEPLETED',
  AllocationFailed: 'RESOURCES_DEPLETED',
  ZonalAllocationFailed: 'RESOURCES_DEPLETED',
  OverconstrainedAllocationRequest: 'RESOURCES_DEPLETED',
  OverconstrainedZonalAllocationRequest: 'RESOURCES_DEPLETED',
  AllocationFailedDueToCapacity: 'RESOURCES_DEPLETED',

  InvalidParameter: 'INVALID_CONFIGURATION',
  InvalidRequestContent: 'INVALID_CONFIGURATION',
  InvalidRequestFormat: 'INVALID_CONFIGURATION',
  BadRequest: 'INVALID_CONFIGURATION',
  InvalidResourceName: 'INVALID_CONFIGURATION',
  ResourceGroupNotFound: 'INVALID_CONFIGURATION',
  GalleryImageNotFound: 'INVALID_CONFIGURATION',
  ImageNotFound: 'INVALID_CONFIGURATION',
  PlatformImageNotFound: 'INVALID_CONFIGURATION',
  PropertyChangeNotAllowed: 'INVALID_CONFIGURATION',
  IdempotentParameterMismatch: 'INVALID_CONFIGURATION',

  ResourceNotFound: 'NOT_FOUND',
  NotFound: 'NOT_FOUND',
  ParentResourceNotFound: 'NOT_FOUND',

  InternalServerError: 'TRANSIENT',
  InternalExecutionError: 'TRANSIENT',
  ServiceUnavailable: 'TRANSIENT',
  RetryableError: 'TRANSIENT',
  GatewayTimeout: 'TRANSIENT',
  AnotherOperationInProgress: 'TRANSIENT',
  Conflict: 'TRANSIENT',
  // Deleting a network whose subnets NICs still use: it succeeds once the machines are gone.
  InUseSubnetCannotBeDeleted: 'TRANSIENT',
  InUseNetworkSecurityGroupCannotBeDeleted: 'TRANSIENT',
  NicInUse: 'TRANSIENT',
  REQUEST_SEND_ERROR: 'TRANSIENT',
};

/** ARM's quota messages: "exceeding approved Total Regional Cores quota", "exceeding quota limits of Core". */
const QUOTA_MESSAGE = /quota/i;

export function classifyArmCode(
  cloudCode: string | undefined,
  status: number | undefined,
  message: string,
): CloudErrorCode {
  if (cloudCode === 'OperationNotAllowed' && QUOTA_MESSAGE.test(message)) return 'QUOTA_EXCEEDED';
  return classifyCloudCode(cloudCode, status, armCodes);
}

/**
 * core-lro reports a failed asynchronous operation as a plain Error whose message is
 * "The long-running operation has failed. <code>. <message>": the code and ARM's message are
 * taken back out of it.
 */
const LRO_FAILED = /^The long-running operation has failed\. ([A-Za-z0-9_.]+)\. ([\s\S]*)$/;

interface RestErrorShape {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  details?: { error?: { code?: string; message?: string } };
}

/** The ARM error code of anything the Azure SDKs threw, if it has one. */
export function armErrorCode(error: unknown): string | undefined {
  const e = error as RestErrorShape | null;
  if (!e || typeof e !== 'object') return undefined;
  const lro = typeof e.message === 'string' ? LRO_FAILED.exec(e.message) : null;
  if (lro) return lro[1];
  if (typeof e.code === 'string') return e.code;
  if (e.details?.error?.code) return e.details.error.code;
  if (e.name === 'CredentialUnavailableError' || e.name === 'AuthenticationError') return e.name;
  return undefined;
}

/** Turns anything the Azure SDKs threw into a {@link CloudError}, keeping ARM's message and code. */
export function toAzureCloudError(error: unknown, operation: string): CloudError {
  return toCloudError(error, { cloud: 'AZURE', operation }, readArmError, (failure) =>
    classifyArmCode(failure.cloudCode, failure.httpStatus, failure.message),
  );
}

function readArmError(error: unknown) {
  const e = error as RestErrorShape | null;
  const raw = messageOf(error);
  const lro = LRO_FAILED.exec(raw);
  return {
    cloudCode: armErrorCode(error),
    httpStatus: typeof e?.statusCode === 'number' ? e.statusCode : undefined,
    message: lro ? lro[2]! : (e?.details?.error?.message ?? raw),
    // A failed long-running operation is ARM's answer, whatever its message says.
    answered: lro !== null,
  };
}

/** Whether ARM answered that what was asked for does not exist. */
export function isNotFound(error: unknown): boolean {
  const e = error as { statusCode?: number } | null;
  const code = armErrorCode(error);
  return (
    e?.statusCode === 404 || code === 'ResourceNotFound' || code === 'NotFound' || code === 'ParentResourceNotFound'
  );
}

// ------------------------------------------------------------------ states

/** Azure writes regions as `eastus` or `East US`; compare them folded. */
export function sameRegion(a: string | undefined, b: string | undefined): boolean {
  const fold = (s: string | undefined) => (s ?? '').replace(/\s+/g, '').toLowerCase();
  return fold(a) === fold(b);
}

/**
 * A gallery image version as the image it is in `region` (null when it is not replicated
 * there): failed, available once replicated there, pending until then.
 */
export function toImage(
  region: string,
  name: string,
  version: GalleryImageVersion,
  ownerId: string,
  description?: string,
): CloudImage | null {
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
    ...(version.publishingProfile?.publishedDate
      ? { createdAt: new Date(version.publishingProfile.publishedDate).toISOString() }
      : {}),
    ownerId,
  };
}

const powerStates: Record<string, MachineState> = {
  starting: 'pending',
  running: 'running',
  stopping: 'stopping',
  stopped: 'stopped',
  deallocating: 'stopping',
  deallocated: 'stopped',
};

/**
 * A VM as the machine it is, named and placed by its tags: its state from its provisioning
 * state and, once provisioned, its power state (`PowerState/<state>` of its instance view).
 */
export function toMachine(vm: VirtualMachine, powerState?: string, privateIp?: string): Machine {
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
  if (state === 'running' && powerState) state = powerStates[powerState] ?? state;
  const failure = vm.instanceView?.statuses?.find((s) => s.level === 'Error');
  const image = vm.storageProfile?.imageReference;
  return {
    id: vm.id!,
    ...machineOf(tags, vm.name!),
    region: vm.location,
    zone: vm.zones?.[0] ?? '',
    instanceType: vm.hardwareProfile?.vmSize ?? '',
    imageId: image?.id ?? (image?.publisher ? `${image.publisher}:${image.offer}:${image.sku}:${image.version}` : ''),
    state,
    ...(failure?.message ? { stateReason: failure.message } : {}),
    ...(vm.timeCreated ? { launchedAt: new Date(vm.timeCreated).toISOString() } : {}),
    ...(privateIp ? { privateIp } : {}),
    tags,
  };
}
