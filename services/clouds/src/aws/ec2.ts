import { EC2Client } from '@aws-sdk/client-ec2';
import { CloudError } from '../errors.js';
import { cloudSpan } from '../tracing.js';
import type { CloudType } from '../provider.js';
import type { AwsProviderOptions } from './aws-provider.js';
import { ec2ErrorCode, toAwsCloudError } from './mapping.js';

/**
 * What the AWS adapter's parts share: the options, one EC2 client per region (made on first
 * use, destroyed by {@link close}), and running a call with what it throws classified.
 */
export class Ec2Context {
  readonly cloud: CloudType;
  /** Owners whose images are searched by name and by tags. */
  readonly imageOwners: string[];
  private readonly clients = new Map<string, EC2Client>();

  constructor(readonly options: AwsProviderOptions) {
    this.cloud = options.cloud ?? 'AWS';
    this.imageOwners = [...(options.imageOwners ?? ['self'])];
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
      });
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
