import { ConfigError } from '@fleetgraph/kit';
import { describe, expect, it } from 'vitest';
import { cloudsConfig, readEnv, workerOptions } from './env.js';

describe('the images environment', () => {
  it('should configure the local cloud only, with development defaults', () => {
    const env = readEnv({});
    expect(env.PORT).toBe(4003);
    expect(cloudsConfig(env)).toEqual({
      local: { url: 'http://127.0.0.1:4566', sourceRegion: 'local-1', builderInstanceType: 't3.medium' },
      aws: null,
      azure: null,
    });
  });

  it('should configure AWS and Azure from their variables and catalogues', () => {
    const env = readEnv({
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIA',
      AWS_SECRET_ACCESS_KEY: 'secret',
      IMAGES_AWS_CATALOGUE: JSON.stringify({ 'ubuntu-22.04-k8s-1.30': { 'us-east-1': 'ami-0123' } }),
      AZURE_SUBSCRIPTION_ID: 'sub',
      AZURE_RESOURCE_GROUP: 'rg',
    });
    const config = cloudsConfig(env);
    expect(config.aws).toEqual({
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIA', secretAccessKey: 'secret' },
      catalogue: { 'ubuntu-22.04-k8s-1.30': { 'us-east-1': 'ami-0123' } },
      builderInstanceType: 't3.medium',
    });
    expect(config.azure).toMatchObject({ region: 'eastus', subscriptionId: 'sub', resourceGroup: 'rg', catalogue: {} });
    expect(config.azure).not.toHaveProperty('credentials');
  });

  it.each([
    ['not JSON', '{'],
    ['an unknown catalogue entry', JSON.stringify({ 'ubuntu-20.04-k8s-1.30': { 'us-east-1': 'ami-1' } })],
    ['an empty image id', JSON.stringify({ 'ubuntu-22.04-k8s-1.30': { 'us-east-1': '' } })],
  ])('should refuse a catalogue that is %s', (_what, catalogue) => {
    expect(() => readEnv({ IMAGES_AWS_CATALOGUE: catalogue })).toThrow(ConfigError);
  });

  it('should scale simulated build tasks by the local cloud speed', () => {
    expect(workerOptions(readEnv({ LOCAL_CLOUD_SPEED: '1000' })).simulatedTaskMs).toBe(20);
  });
});
