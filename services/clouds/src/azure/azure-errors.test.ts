/** ARM error classification: pure functions over ARM's codes and messages (no cloud, no fake). */
import { RestError } from '@azure/core-rest-pipeline';
import { describe, expect, it } from 'vitest';
import { classifyArmCode, toAzureCloudError } from './mapping.js';

describe('ARM error classification', () => {
  it.each([
    ['QuotaExceeded', 409, 'Operation results in exceeding quota limits of Core.', 'QUOTA_EXCEEDED'],
    [
      'OperationNotAllowed',
      409,
      'Operation could not be completed as it results in exceeding approved Total Regional Cores quota.',
      'QUOTA_EXCEEDED',
    ],
    [
      'OperationNotAllowed',
      409,
      "Operation 'generalize' is not allowed on VM 'a' since the VM is running.",
      'INVALID_CONFIGURATION',
    ],
    ['TooManyRequests', 429, 'throttled', 'RATE_LIMITED'],
    [undefined, 429, 'throttled', 'RATE_LIMITED'],
    ['AuthorizationFailed', 403, 'no', 'UNAUTHORIZED'],
    ['AuthenticationFailed', 401, 'no', 'UNAUTHORIZED'],
    ['SkuNotAvailable', 409, 'no capacity', 'RESOURCES_DEPLETED'],
    ['AllocationFailed', 200, 'no capacity', 'RESOURCES_DEPLETED'],
    ['ZonalAllocationFailed', 200, 'no capacity', 'RESOURCES_DEPLETED'],
    ['InvalidParameter', 400, 'bad', 'INVALID_CONFIGURATION'],
    ['ResourceNotFound', 404, 'gone', 'NOT_FOUND'],
    ['NotFound', 404, 'gone', 'NOT_FOUND'],
    ['InternalServerError', 500, 'oops', 'TRANSIENT'],
    [undefined, 503, 'oops', 'TRANSIENT'],
  ] as const)('classifies %s (HTTP %i) as %s', (code, status, message, expected) => {
    expect(classifyArmCode(code, status, message)).toBe(expected);
  });

  it("takes ARM's code and message back out of core-lro's failed-operation error", () => {
    const message =
      'Allocation failed. If you are trying to add a new VM to an Availability Set or update/resize an existing VM in an Availability Set, please note that such Availability Set allocation is scoped to a single cluster.';
    const error = toAzureCloudError(
      new Error(`The long-running operation has failed. ZonalAllocationFailed. ${message}`),
      'createMachine',
    );
    expect(error).toMatchObject({
      name: 'CloudError',
      code: 'RESOURCES_DEPLETED',
      cloudCode: 'ZonalAllocationFailed',
      message,
      cloud: 'AZURE',
      operation: 'createMachine',
    });
  });

  it("keeps a RestError's ARM code, status and message", () => {
    const error = toAzureCloudError(
      new RestError('The client does not have authorization to perform action.', {
        code: 'AuthorizationFailed',
        statusCode: 403,
      }),
      'quota',
    );
    expect(error).toMatchObject({
      code: 'UNAUTHORIZED',
      cloudCode: 'AuthorizationFailed',
      httpStatus: 403,
      retryable: false,
      message: 'The client does not have authorization to perform action.',
    });
  });

  it('classifies a failed connection as TRANSIENT', () => {
    const error = toAzureCloudError(
      new RestError('getaddrinfo ENOTFOUND management.azure.com', { code: 'REQUEST_SEND_ERROR' }),
      'regions',
    );
    expect(error).toMatchObject({ code: 'TRANSIENT', retryable: true });
  });
});
