/** The cloud registry: providers per cloud and region, and its cache of offerings. No cloud is called: the providers' offering calls are stubbed. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CloudError } from './errors.js';
import { CloudRegistry } from './registry.js';

const regionsOf = [{ name: 'local-1', zones: ['local-1a'] }];

describe('CloudRegistry', () => {
  let registry: CloudRegistry;
  afterEach(async () => {
    vi.useRealTimers();
    await registry.close();
  });

  it("makes one provider per cloud and region, on first use, from the cloud's configuration", () => {
    registry = new CloudRegistry({
      clouds: [
        { type: 'LOCAL', endpoint: 'http://127.0.0.1:1' },
        { type: 'AWS', region: 'eu-west-1' },
      ],
    });
    expect(registry.types).toEqual(['LOCAL', 'AWS']);
    expect(registry.homeRegion('LOCAL')).toBe('local-1');
    expect(registry.homeRegion('AWS')).toBe('eu-west-1');
    const home = registry.get('LOCAL');
    expect(home.type).toBe('LOCAL');
    expect(registry.get('LOCAL', 'local-1')).toBe(home);
    expect(registry.get('LOCAL', 'local-2')).not.toBe(home);
    expect(registry.get('AWS').type).toBe('AWS');
  });

  it('refuses a cloud that is not configured as INVALID_CONFIGURATION, in its own words when given', () => {
    registry = new CloudRegistry({
      clouds: [],
      notConfigured: { AZURE: 'Azure is not configured: set AZURE_SUBSCRIPTION_ID' },
    });
    expect(registry.has('AZURE')).toBe(false);
    expect(() => registry.get('AZURE', 'eastus')).toThrow(CloudError);
    expect(() => registry.get('AZURE', 'eastus')).toThrow('Azure is not configured: set AZURE_SUBSCRIPTION_ID');
    expect(() => registry.get('AWS')).toThrow('AWS is not configured');
  });

  it('asks a cloud its regions and instance types once per TTL, and does not keep a failure', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    registry = new CloudRegistry({ clouds: [{ type: 'LOCAL', endpoint: 'http://127.0.0.1:1' }], offerTtlMs: 1000 });
    const provider = registry.get('LOCAL');
    const regions = vi.spyOn(provider, 'regions').mockRejectedValueOnce(new Error('down')).mockResolvedValue(regionsOf);
    const types = vi
      .spyOn(provider, 'instanceTypes')
      .mockResolvedValue([{ name: 't3.medium', vcpus: 2, memoryMiB: 4096 }]);

    await expect(registry.regions('LOCAL')).rejects.toThrow('down');
    expect(await registry.regions('LOCAL')).toEqual(regionsOf);
    expect(await registry.region('LOCAL', 'local-1')).toEqual(regionsOf[0]);
    expect(await registry.region('LOCAL', 'local-9')).toBeNull();
    expect(regions).toHaveBeenCalledTimes(2);
    await registry.instanceTypes('LOCAL', 'local-1');
    await registry.instanceTypes('LOCAL', 'local-1');
    expect(types).toHaveBeenCalledTimes(1);

    vi.setSystemTime(Date.now() + 1001);
    await registry.regions('LOCAL');
    await registry.instanceTypes('LOCAL', 'local-1');
    expect(regions).toHaveBeenCalledTimes(3);
    expect(types).toHaveBeenCalledTimes(2);
  });

  it('closes every provider it made', async () => {
    registry = new CloudRegistry({ clouds: [{ type: 'LOCAL', endpoint: 'http://127.0.0.1:1' }] });
    const closes = [registry.get('LOCAL', 'local-1'), registry.get('LOCAL', 'local-2')].map((p) =>
      vi.spyOn(p, 'close'),
    );
    await registry.close();
    for (const close of closes) expect(close).toHaveBeenCalledTimes(1);
  });
});
