import { join } from 'node:path';
import { createMongoStore } from './mongodb.js';
import { createSqliteStore } from './sqlite.js';
import type { Store } from './store.js';

export * from './store.js';
export { batchedGet } from './batched-get.js';
export { createMongoStore, type MongoStoreOptions } from './mongodb.js';
export { createSqliteStore, type SqliteCollection, type SqliteStore, type SqliteStoreOptions } from './sqlite.js';

export interface CreateStoreOptions {
  /** When set, the store is MongoDB's database `fleetgraph_<service>` there. */
  mongodbUri?: string;
  /** Where the SQLite file `<service>.sqlite` lives when no MongoDB URI is set. */
  dataDir: string;
  /** The service's name: letters, digits, `-` and `_`. */
  service: string;
}

const SERVICE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Opens the service's store: MongoDB when `mongodbUri` is set, else a SQLite file under `dataDir`. */
export async function createStore(options: CreateStoreOptions): Promise<Store> {
  const { mongodbUri, dataDir, service } = options;
  if (!SERVICE.test(service)) throw new TypeError(`service name ${JSON.stringify(service)} must match ${SERVICE}`);
  if (mongodbUri) return createMongoStore({ uri: mongodbUri, database: `fleetgraph_${service}` });
  return createSqliteStore({ file: join(dataDir, `${service}.sqlite`) });
}
