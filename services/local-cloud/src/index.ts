export { startLocalCloud, type AgentCredentialsStore, type LocalCloud, type LocalCloudOptions } from './local-cloud.js';
export {
  MachineEvents,
  systemClock,
  type Clock,
  type MachineInfo,
  type MachineListener,
  type MachineStateChange,
} from './simulator.js';
export { faultSettingsSchema, type FaultSettings, type InjectedError } from './faults.js';
export {
  ACCOUNT_ID,
  DURATIONS,
  ImageTagKeys,
  INSTANCE_TYPES,
  KUBERNETES_VERSIONS,
  PUBLISHER,
  REGIONS,
  SEED_IMAGES,
  SEED_REGION,
  zonesOf,
  type InstanceTypeSpec,
  type SeedImage,
} from './catalog.js';
export { seedImageId, FIRST_SEED_IMAGE, localCloudAdmin, nodeUserData, type NodeUserDataInput } from './testing.js';
