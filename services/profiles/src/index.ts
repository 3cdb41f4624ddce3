export { buildProfilesSchema, type ProfilesDeps } from './schema/index.js';
export { ProfileRepository } from './adapters/profile.repo.js';
export { serveProfileRequests } from './adapters/profile.bus.js';
export { validateProfile } from './domain/profile.js';
export { ApiKeyRepository } from './apikeys/apikey.repo.js';
export { serveApiKeyRequests, natsRevocationAnnouncer, type RevocationAnnouncer } from './apikeys/apikey.bus.js';
