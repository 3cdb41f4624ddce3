import { EC2Client } from '@aws-sdk/client-ec2';
import { Batcher } from '@fleetgraph/kit/core';
import { CloudError } from '../errors.js';
import { cloudSpan } from '../tracing.js';
import type { CloudType } from '../provider.js';
import type { AwsProviderOptions } from './aws-provider.js';
import { ec2ErrorCode, toAwsCloudError } from './mapping.js';

/** How long describes of many clusters wait for each other by default (ms). */
export const DEFAULT_BATCH_WINDOW_MS = 5;
/**
 * Calls in one batched describe at most. EC2 takes at most 200 filter values in one call; a
 * batch uses one value per call, plus a few of its own (instance states).
 */
export const MAX_BATCH_SIZE = 100;

/**
 * True when an EC2 filter value would match more than itself (`*`, `?`, or `\`, EC2's wildcards
 * and their escape): such a call is made alone, since its answer cannot be told apart from the
 * others' by comparing the value.
 */
export function hasFilterWildcard(value: string): boolean {
  return /[*?\\]/.test(value);
}

/**
 * What the AWS adapter's parts share: the options, one EC2 client per region (made on first
 * use, destroyed by {@link close}), running a call with what it throws classified, and the
 * batcher that makes the describes of many clusters as one call (`batch.ts`; its keys name the
 * region, so that nothing is combined across regions, and each provider has its own).
 */
export class Ec2Context {
  readonly cloud: CloudType;
  /** Owners whose images are searched by name and by tags. */
  readonly imageOwners: string[];
  readonly batches: Batcher;
  private readonly clients = new Map<string, EC2Client>();

  constructor(readonly options: AwsProviderOptions) {
    this.cloud = options.cloud ?? 'AWS';
    this.imageOwners = [...(options.imageOwners ?? ['self'])];
    this.batches = new Batcher({ windowMs: options.batchWindowMs ?? DEFAULT_BATCH_WINDOW_MS, maxSize: MAX_BATCH_SIZE });
  }

  client(region: string): EC2Client {
    let client = this.clients.get(region);
    if (!client) {
      client = new EC2Client({
        region,
        endpoint: this.options.endpoint,
        credentials: this.options.credentials,
        maxAttempts: this.options.maxAttempts ?? 5,
        retryMode: this.options.retryMode ?? 'adaptive',
        requestHandler: { requestTimeout: this.options.requestTimeoutMs ?? 30_000, connectionTimeout: 5_000 },
        // The middleware stack is resolved once per command type rather than on every call: nothing
        // is added to it after the line below.
        cacheMiddleware: true,
      });
      // The SDK's logger middleware filters every input and output for its logger (a no-op one
      // here: the adapter logs nothing of the SDK's) on every call; its errors reach the caller anyway.
      client.middlewareStack.remove('loggerMiddleware');
      // A span per SDK call, its retries inside (tracing.ts).
      client.middlewareStack.add(
        (next, context) => (args) => {
          const method = (context.commandName ?? 'Unknown').replace(/Command$/, '');
          return cloudSpan(
            `EC2 ${method}`,
            { 'rpc.system': 'aws-api', 'rpc.service': 'EC2', 'rpc.method': method, 'cloud.region': region },
            () => next(args),
          );
        },
        { step: 'initialize', name: 'fleetgraphTracing' },
      );
      this.clients.set(region, client);
    }
    return client;
  }

  /** Runs one EC2 call and classifies what it throws. */
  async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toAwsCloudError(error, operation, this.cloud);
    }
  }

  invalid(operation: string, message: string): CloudError {
    return new CloudError({ code: 'INVALID_CONFIGURATION', message, cloud: this.cloud, operation });
  }

  close(): void {
    this.batches.close(
      () => new CloudError({ code: 'TRANSIENT', message: 'the cloud provider was closed', cloud: this.cloud }),
    );
    for (const client of this.clients.values()) client.destroy();
    this.clients.clear();
  }
}

/** Runs an EC2 call, treating the given error codes as "already done". */
export async function ignoring(codes: string[], fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    const code = ec2ErrorCode(error);
    if (!code || !codes.includes(code)) throw error;
  }
}
