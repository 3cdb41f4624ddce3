import type { Filter, Image, Instance, Tag } from '@aws-sdk/client-ec2';
import {
  classifyCloudCode,
  messageOf,
  toCloudError,
  type CloudCodeTable,
  type CloudError,
  type CloudErrorCode,
} from '../errors.js';
import type { CloudImage, CloudType, ImageStatus, Machine, MachineState, Tags } from '../provider.js';
import { machineOf } from '../tags.js';

/**
 * What EC2 says, in the provider interface's terms: its error codes classified, its tags and
 * states mapped to and from the interface's.
 */

// ------------------------------------------------------------------ errors

/**
 * EC2's error codes (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
 * and the SDK's own, by classification. Codes not listed fall to the rules in
 * {@link ec2CodeByName}: `*.NotFound`, `Invalid*`, then the HTTP status.
 */
const ec2Codes: CloudCodeTable = {
  VcpuLimitExceeded: 'QUOTA_EXCEEDED',
  InstanceLimitExceeded: 'QUOTA_EXCEEDED',
  MaxSpotInstanceCountExceeded: 'QUOTA_EXCEEDED',
  VpcLimitExceeded: 'QUOTA_EXCEEDED',
  SecurityGroupLimitExceeded: 'QUOTA_EXCEEDED',
  RulesPerSecurityGroupLimitExceeded: 'QUOTA_EXCEEDED',
  ResourceLimitExceeded: 'QUOTA_EXCEEDED',
  AddressLimitExceeded: 'QUOTA_EXCEEDED',
  VolumeLimitExceeded: 'QUOTA_EXCEEDED',
  AMIQuotaExceeded: 'QUOTA_EXCEEDED',

  RequestLimitExceeded: 'RATE_LIMITED',
  Throttling: 'RATE_LIMITED',
  ThrottlingException: 'RATE_LIMITED',
  RequestThrottled: 'RATE_LIMITED',
  RequestThrottledException: 'RATE_LIMITED',
  TooManyRequestsException: 'RATE_LIMITED',
  SlowDown: 'RATE_LIMITED',

  UnauthorizedOperation: 'UNAUTHORIZED',
  AuthFailure: 'UNAUTHORIZED',
  InvalidClientTokenId: 'UNAUTHORIZED',
  SignatureDoesNotMatch: 'UNAUTHORIZED',
  IncompleteSignature: 'UNAUTHORIZED',
  MissingAuthenticationToken: 'UNAUTHORIZED',
  ExpiredToken: 'UNAUTHORIZED',
  RequestExpired: 'UNAUTHORIZED',
  OptInRequired: 'UNAUTHORIZED',
  Blocked: 'UNAUTHORIZED',
  PendingVerification: 'UNAUTHORIZED',
  AccessDenied: 'UNAUTHORIZED',
  AccessDeniedException: 'UNAUTHORIZED',
  CredentialsProviderError: 'UNAUTHORIZED',

  InsufficientInstanceCapacity: 'RESOURCES_DEPLETED',
  InsufficientHostCapacity: 'RESOURCES_DEPLETED',
  InsufficientCapacity: 'RESOURCES_DEPLETED',
  InsufficientReservedInstanceCapacity: 'RESOURCES_DEPLETED',
  InsufficientAddressCapacity: 'RESOURCES_DEPLETED',
  InsufficientFreeAddressesInSubnet: 'RESOURCES_DEPLETED',
  InsufficientCapacityOnHost: 'RESOURCES_DEPLETED',

  InvalidParameterValue: 'INVALID_CONFIGURATION',
  InvalidParameter: 'INVALID_CONFIGURATION',
  InvalidParameterCombination: 'INVALID_CONFIGURATION',
  MissingParameter: 'INVALID_CONFIGURATION',
  UnknownParameter: 'INVALID_CONFIGURATION',
  Unsupported: 'INVALID_CONFIGURATION',
  UnsupportedOperation: 'INVALID_CONFIGURATION',
  InvalidAction: 'INVALID_CONFIGURATION',
  IdempotentParameterMismatch: 'INVALID_CONFIGURATION',

  InvalidInstanceID: 'NOT_FOUND',

  InternalError: 'TRANSIENT',
  InternalFailure: 'TRANSIENT',
  ServiceUnavailable: 'TRANSIENT',
  Unavailable: 'TRANSIENT',
  // Deleting a network while instances still shut down: it succeeds once they are gone.
  DependencyViolation: 'TRANSIENT',
  IncorrectState: 'TRANSIENT',
  IncorrectInstanceState: 'TRANSIENT',
  ConcurrentTagAccess: 'TRANSIENT',
  TimeoutError: 'TRANSIENT',
};

/** EC2's naming rules, for codes its table does not list. */
function ec2CodeByName(cloudCode: string): CloudErrorCode | undefined {
  // InvalidAMIID.NotFound, .Malformed, .Unavailable: the image asked for cannot be used.
  if (cloudCode.startsWith('InvalidAMIID.')) return 'INVALID_CONFIGURATION';
  if (cloudCode.endsWith('.NotFound')) return 'NOT_FOUND';
  if (cloudCode.endsWith('LimitExceeded')) return 'QUOTA_EXCEEDED';
  if (cloudCode.startsWith('Invalid') || cloudCode.endsWith('.Malformed')) return 'INVALID_CONFIGURATION';
  return undefined;
}

/** Classifies an EC2 error code; `status` is the HTTP status when known. */
export function classifyEc2Code(cloudCode: string | undefined, status: number | undefined): CloudErrorCode {
  return classifyCloudCode(cloudCode, status, ec2Codes, ec2CodeByName);
}

interface SdkErrorShape {
  name?: unknown;
  Code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** The EC2 error code carried by an SDK error, if any. */
export function ec2ErrorCode(error: unknown): string | undefined {
  const e = error as SdkErrorShape | null;
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.Code === 'string') return e.Code;
  if (typeof e.name !== 'string') return undefined;
  // A service error (it has response metadata) is named after its code; other errors only
  // when the SDK names a known condition (CredentialsProviderError, TimeoutError).
  return e.$metadata || e.name in ec2Codes ? e.name : undefined;
}

/**
 * Turns anything the EC2 client threw into a {@link CloudError}, keeping EC2's message and code.
 * Socket-level failures (refused, reset, timed out) are TRANSIENT.
 */
export function toAwsCloudError(error: unknown, operation: string, cloud: CloudType): CloudError {
  return toCloudError(
    error,
    { cloud, operation },
    (e) => ({
      cloudCode: ec2ErrorCode(e),
      httpStatus: (e as SdkErrorShape | null)?.$metadata?.httpStatusCode,
      message: messageOf(e),
    }),
    (failure) => classifyEc2Code(failure.cloudCode, failure.httpStatus),
  );
}

// ------------------------------------------------------------------ tags and states

/** Instance states that are not gone yet. */
export const liveStates = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];

const stateOf: Record<string, MachineState> = {
  pending: 'pending',
  running: 'running',
  stopping: 'stopping',
  stopped: 'stopped',
  'shutting-down': 'terminating',
  terminated: 'terminated',
};

const imageStatusOf: Record<string, ImageStatus> = {
  pending: 'pending',
  transient: 'pending',
  available: 'available',
  failed: 'failed',
  invalid: 'failed',
  error: 'failed',
  deregistered: 'failed',
  disabled: 'failed',
};

export function toTags(tags: Tags): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

export function fromTags(tags: Tag[] | undefined): Tags {
  return Object.fromEntries((tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
}

/** DescribeX filters matching every one of the tags. */
export function tagFilters(tags: Tags): Filter[] {
  return Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
}

/** An AMI as the image it is in `region`. */
export function toImage(region: string, image: Image): CloudImage {
  return {
    id: image.ImageId!,
    name: image.Name ?? image.ImageId!,
    region,
    status: imageStatusOf[image.State ?? 'pending'] ?? 'pending',
    ...(image.StateReason?.Message && image.State !== 'available' ? { statusMessage: image.StateReason.Message } : {}),
    ...(image.Description ? { description: image.Description } : {}),
    tags: fromTags(image.Tags),
    ...(image.CreationDate ? { createdAt: image.CreationDate } : {}),
    ...(image.OwnerId ? { ownerId: image.OwnerId } : {}),
  };
}

/** An instance as the machine it is, named and placed by its tags. */
export function toMachine(region: string, instance: Instance): Machine {
  const tags = fromTags(instance.Tags);
  return {
    id: instance.InstanceId!,
    ...machineOf(tags, tags.Name ?? instance.InstanceId!),
    region,
    zone: instance.Placement?.AvailabilityZone ?? '',
    instanceType: instance.InstanceType ?? '',
    imageId: instance.ImageId ?? '',
    state: stateOf[instance.State?.Name ?? 'pending'] ?? 'pending',
    ...(instance.StateReason?.Message ? { stateReason: instance.StateReason.Message } : {}),
    ...(instance.PrivateIpAddress ? { privateIp: instance.PrivateIpAddress } : {}),
    ...(instance.LaunchTime ? { launchedAt: new Date(instance.LaunchTime).toISOString() } : {}),
    tags,
  };
}
