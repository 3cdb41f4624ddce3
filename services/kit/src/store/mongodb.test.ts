import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, describe } from 'vitest';
import { createMongoStore } from './mongodb.js';
import { describeStoreContract } from './store.contract.js';

// Runs only against a real server: MONGODB_URI=mongodb://localhost:27017 npx vitest run --project unit services/kit/src/store
const uri = process.env.MONGODB_URI;

describe.skipIf(!uri)('mongodb store', () => {
  // A fresh database for this run, dropped afterwards.
  const database = `fleetgraph_test_${randomBytes(6).toString('hex')}`;

  afterAll(async () => {
    const client = new MongoClient(uri!);
    try {
      await client.db(database).dropDatabase();
    } finally {
      await client.close();
    }
  });

  describeStoreContract('mongodb', () => createMongoStore({ uri: uri!, database }), { durable: true });
});
