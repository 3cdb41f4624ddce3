import type { CloudType } from './provider.js';

/**
 * Every classified failure of a cloud call, with what it means for the caller. These codes are
 * what a cluster condition's `code` carries (contract.graphql, ClusterCondition).
 */
export const CloudErrorCodes = {
  QUOTA_EXCEEDED:
    'An account or regional limit (vCPUs, instances) would be exceeded; it succeeds once the quota is raised or freed.',
  RATE_LIMITED: 'The cloud throttled the caller; retrying after a backoff succeeds.',
  UNAUTHORIZED: 'The credentials are missing, invalid or not allowed to do this; retrying does not help.',
  RESOURCES_DEPLETED:
    'The cloud has no capacity for this size in this zone now; retrying later, or elsewhere, may succeed.',
  INVALID_CONFIGURATION:
    'The request itself is wrong (an unknown image or size, bad parameters); it fails until changed.',
  NOT_FOUND: 'The resource named does not exist.',
  TRANSIENT: 'A server-side or network failure; retrying the same request may succeed.',
} as const;

export type CloudErrorCode = keyof typeof CloudErrorCodes;

/** Codes for which repeating the same request, unchanged, can succeed (sooner or later). */
const retryableByDefault: Record<CloudErrorCode, boolean> = {
  QUOTA_EXCEEDED: true,
  RATE_LIMITED: true,
  UNAUTHORIZED: false,
  RESOURCES_DEPLETED: true,
  INVALID_CONFIGURATION: false,
  NOT_FOUND: false,
  TRANSIENT: true,
};

export interface CloudErrorDetails {
  code: CloudErrorCode;
  /** The cloud's own message, verbatim. */
  message: string;
  /** The cloud's own error code (`VcpuLimitExceeded`, `OperationNotAllowed`, ...), when it gave one. */
  cloudCode?: string;
  cloud: CloudType;
  /** The provider method that failed (`createMachine`, ...). */
  operation?: string;
  httpStatus?: number;
  /** @default by code: true for QUOTA_EXCEEDED, RATE_LIMITED, RESOURCES_DEPLETED, TRANSIENT */
  retryable?: boolean;
}

/**
 * The only error a {@link CloudProvider} throws. `message` is the cloud's message verbatim, so
 * that a condition can show exactly what the cloud said ("You have requested more vCPU
 * capacity than your current vCPU limit of 64 allows ...").
 */
export class CloudError extends Error {
  readonly code: CloudErrorCode;
  readonly cloudCode: string | undefined;
  readonly cloud: CloudType;
  readonly operation: string | undefined;
  readonly httpStatus: number | undefined;
  /** Whether the same request, unchanged, can succeed later. */
  readonly retryable: boolean;

  constructor(details: CloudErrorDetails, options?: { cause?: unknown }) {
    super(details.message, options);
    this.name = 'CloudError';
    this.code = details.code;
    this.cloudCode = details.cloudCode;
    this.cloud = details.cloud;
    this.operation = details.operation;
    this.httpStatus = details.httpStatus;
    this.retryable = details.retryable ?? retryableByDefault[details.code];
  }
}

export function isCloudError(error: unknown): error is CloudError {
  return error instanceof CloudError;
}

/** Node's socket-level error codes that mean the request may never have reached the cloud. */
const networkErrorCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** True for failures below HTTP: refused or reset connections, DNS, timeouts, aborted sockets. */
export function isNetworkError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const err = e as { code?: unknown; name?: unknown; cause?: unknown };
    if (typeof err.code === 'string' && networkErrorCodes.has(err.code)) return true;
    if (err.name === 'TimeoutError' || err.name === 'RequestTimeout') return true;
    e = err.cause;
  }
  return false;
}

/** The message of anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ------------------------------------------------------------------ classification, shared by the adapters

/**
 * A cloud's own error codes by classification (EC2's `VcpuLimitExceeded`, ARM's
 * `QuotaExceeded`, ...): what each adapter keeps of its own; the rules are shared.
 */
export type CloudCodeTable = Readonly<Record<string, CloudErrorCode>>;

/**
 * What the HTTP status says, for a code the cloud's table does not know: 429 throttled,
 * 401/403 unauthorized, 404 not found, other 4xx permanent, 5xx transient. Without a status
 * (no answer came) a failure is TRANSIENT.
 */
export function classifyHttpStatus(status: number | undefined): CloudErrorCode {
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
 * Classifies a cloud's error code: by the cloud's table; else by the cloud's naming rules
 * (`byName`, e.g. EC2's `*.NotFound`), when it has some; else by the HTTP status.
 */
export function classifyCloudCode(
  cloudCode: string | undefined,
  status: number | undefined,
  table: CloudCodeTable,
  byName?: (cloudCode: string) => CloudErrorCode | undefined,
): CloudErrorCode {
  if (cloudCode) {
    const known = Object.hasOwn(table, cloudCode) ? table[cloudCode] : byName?.(cloudCode);
    if (known) return known;
  }
  return classifyHttpStatus(status);
}

/** What a cloud SDK's error says, as its adapter reads it. */
export interface SdkFailure {
  /** The cloud's own error code, when the error carries one. */
  cloudCode: string | undefined;
  httpStatus: number | undefined;
  /** The cloud's message, verbatim. */
  message: string;
  /**
   * True when the cloud did answer although no HTTP status came with the error (Azure's failed
   * long-running operations): such a failure is never taken for a network one.
   */
  answered?: boolean;
}

/**
 * The {@link CloudError} for anything a cloud SDK threw, keeping the cloud's code and message:
 * a CloudError as it is; a failure below HTTP (refused, reset, timed out: no status, no answer)
 * TRANSIENT; anything else as the adapter's `classify` says.
 */
export function toCloudError(
  error: unknown,
  context: { cloud: CloudType; operation: string },
  read: (error: unknown) => SdkFailure,
  classify: (failure: SdkFailure) => CloudErrorCode,
): CloudError {
  if (error instanceof CloudError) return error;
  const failure = read(error);
  const { cloudCode, message, httpStatus } = failure;
  const { cloud, operation } = context;
  if (httpStatus === undefined && !failure.answered && isNetworkError(error)) {
    return new CloudError({ code: 'TRANSIENT', message, cloudCode, cloud, operation }, { cause: error });
  }
  return new CloudError(
    { code: classify(failure), message, cloudCode, cloud, operation, httpStatus },
    { cause: error },
  );
}
