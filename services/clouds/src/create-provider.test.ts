import { describe, expect, it } from 'vitest';
import { createProvider } from './create-provider.js';
import { CloudError } from './errors.js';

describe('createProvider', () => {
  it('picks the adapter named by the configuration', async () => {
    const local = createProvider({ type: 'LOCAL', region: 'local-1' });
    const aws = createProvider({
      type: 'AWS',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' },
    });
    const azure = createProvider({
      type: 'AZURE',
      region: 'eastus',
      subscriptionId: '00000000-0000-0000-0000-000000000000',
      resourceGroup: 'rg',
      credentials: { tenantId: 't', clientId: 'c', clientSecret: 's' },
    });
    expect([local.type, aws.type, azure.type]).toEqual(['LOCAL', 'AWS', 'AZURE']);
    await Promise.all([local.close(), aws.close(), azure.close()]);
  });

  it('refuses a bad configuration as INVALID_CONFIGURATION, naming every problem', () => {
    let error: unknown;
    try {
      createProvider({ type: 'AZURE', region: '', subscriptionId: 's' } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CloudError);
    expect(error).toMatchObject({ code: 'INVALID_CONFIGURATION', retryable: false });
    expect((error as CloudError).message).toMatch(/region/);
    expect((error as CloudError).message).toMatch(/resourceGroup/);
  });
});
