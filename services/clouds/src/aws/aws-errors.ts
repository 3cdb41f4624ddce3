import { CloudError, isNetworkError, messageOf, type CloudErrorCode } from '../errors.js';
import type { CloudType } from '../provider.js';

/**
 * EC2's error codes (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
 * and the SDK's own, by classification. Codes not listed fall to the rules in
 * {@link classifyEc2Code}: `*.NotFound`, `Invalid*`, then the HTTP status.
 */
const ec2Codes: Record<string, CloudErrorCode> = {
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

/** Classifies an EC2 error code; `status` is the HTTP status when known. */
export function classifyEc2Code(cloudCode: string | undefined, status: number | undefined): CloudErrorCode {
  if (cloudCode) {
    const known = ec2Codes[cloudCode];
    if (known) return known;
    // InvalidAMIID.NotFound, .Malformed, .Unavailable: the image asked for cannot be used.
    if (cloudCode.startsWith('InvalidAMIID.')) return 'INVALID_CONFIGURATION';
    if (cloudCode === 'InvalidInstanceID.NotFound') return 'NOT_FOUND';
    if (cloudCode.endsWith('.NotFound')) return 'NOT_FOUND';
    if (cloudCode.endsWith('LimitExceeded')) return 'QUOTA_EXCEEDED';
    if (cloudCode.startsWith('Invalid') || cloudCode.endsWith('.Malformed')) return 'INVALID_CONFIGURATION';
  }
  if (status !== undefined) {
    if (status === 429) return 'RATE_LIMITED';
    if (status === 401 || status === 403) return 'UNAUTHORIZED';
    if (status === 404) return 'NOT_FOUND';
    if (status >= 500) return 'TRANSIENT';
    if (status >= 400) return 'INVALID_CONFIGURATION';
  }
  return 'TRANSIENT';
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
export function toCloudError(error: unknown, operation: string, cloud: CloudType): CloudError {
  if (error instanceof CloudError) return error;
  const e = error as SdkErrorShape;
  const status = e?.$metadata?.httpStatusCode;
  if (isNetworkError(error) && status === undefined) {
    return new CloudError({ code: 'TRANSIENT', message: messageOf(error), cloudCode: ec2ErrorCode(error), cloud, operation }, { cause: error });
  }
  const cloudCode = ec2ErrorCode(error);
  return new CloudError(
    { code: classifyEc2Code(cloudCode, status), message: messageOf(error), cloudCode, cloud, operation, httpStatus: status },
    { cause: error },
  );
}
