export * from './provider.js';
export * from './errors.js';
export { TagKeys, machineTags, ec2ClientToken } from './tags.js';
export {
  planSubnets,
  ingressRules,
  networkNames,
  DEFAULT_NETWORK_CIDR,
  KUBE_API_PORT,
  NODE_PORT_RANGE,
} from './network-plan.js';
export type { SubnetPlan, IngressRule, RuleSource } from './network-plan.js';
export { createProvider, cloudConfigSchema } from './create-provider.js';
export type {
  CloudConfig,
  AwsCloudConfig,
  AzureCloudConfig,
  LocalCloudConfig,
  ProviderDependencies,
} from './create-provider.js';
export { CloudRegistry, DEFAULT_REGIONS, DEFAULT_OFFER_TTL_MS } from './registry.js';
export type { CloudRegistryOptions, RegistryCloudConfig } from './registry.js';
export { createAwsProvider } from './aws/aws-provider.js';
export type { AwsProviderOptions, AwsCredentials } from './aws/aws-provider.js';
export { classifyEc2Code } from './aws/mapping.js';
export { createAzureProvider } from './azure/azure-provider.js';
export type { AzureProviderOptions, AzureServicePrincipal } from './azure/azure-provider.js';
export { classifyArmCode } from './azure/mapping.js';
export {
  createLocalProvider,
  DEFAULT_LOCAL_CLOUD_ENDPOINT,
  LOCAL_CLOUD_CREDENTIALS,
  LOCAL_IMAGE_PUBLISHER,
} from './local/local-provider.js';
export type { LocalProviderOptions } from './local/local-provider.js';
