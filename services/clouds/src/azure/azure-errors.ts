import { CloudError, isNetworkError, messageOf, type CloudErrorCode } from '../errors.js';

/**
 * ARM error codes (the `error.code` of ARM's `{ error: { code, message } }` bodies and of failed
 * asynchronous operations) by classification. `OperationNotAllowed` is quota only when its
 * message says so; otherwise it is a request ARM refuses.
 */
const armCodes: Record<string, CloudErrorCode> = {
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

export function classifyArmCode(cloudCode: string | undefined, status: number | undefined, message: string): CloudErrorCode {
  if (cloudCode === 'OperationNotAllowed' && QUOTA_MESSAGE.test(message)) return 'QUOTA_EXCEEDED';
  if (cloudCode && armCodes[cloudCode]) return armCodes[cloudCode];
  if (status !== undefined) {
    if (status === 429) return 'RATE_LIMITED';
    if (status === 401 || status === 403) return 'UNAUTHORIZED';
    if (status === 404) return 'NOT_FOUND';
    if (status >= 500) return 'TRANSIENT';
    if (status >= 400) return 'INVALID_CONFIGURATION';
  }
  return 'TRANSIENT';
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
  if (error instanceof CloudError) return error;
  const e = error as RestErrorShape;
  const status = typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  const raw = messageOf(error);
  const lro = LRO_FAILED.exec(raw);
  const message = lro ? lro[2]! : (e?.details?.error?.message ?? raw);
  const cloudCode = armErrorCode(error);
  if (status === undefined && !lro && isNetworkError(error)) {
    return new CloudError({ code: 'TRANSIENT', message, cloudCode, cloud: 'AZURE', operation }, { cause: error });
  }
  return new CloudError(
    { code: classifyArmCode(cloudCode, status, message), message, cloudCode, cloud: 'AZURE', operation, httpStatus: status },
    { cause: error },
  );
}
