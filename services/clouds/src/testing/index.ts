/**
 * Test helpers: the provider contract suite and the Azure Resource Manager fake. They import
 * vitest; only tests import this entry point (`@fleetgraph/clouds/testing`).
 */
export {
  describeProviderContract,
  eventually,
  type ContractOptions,
  type ProviderHarness,
} from './provider-contract.js';
export {
  ARM_THROTTLE_MESSAGE,
  ARM_FAKE_MARKETPLACE,
  ARM_FAKE_SIZES,
  armFakeHttpClient,
  armQuotaMessage,
  startArmFake,
  type ArmFake,
  type ArmFakeOptions,
} from '../azure/arm-fake.js';
