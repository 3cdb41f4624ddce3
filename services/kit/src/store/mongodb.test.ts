import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDeployment, createMongoStore } from './mongodb.js';
import { describeStoreContract } from './store.contract.js';
import { StoreError } from './store.js';

// Runs only against a real replica set (store/README.md, Tests):
// MONGODB_URI='mongodb://localhost:27017/?directConnection=true' npx vitest run --project unit services/kit/src/store
const uri = process.env.MONGODB_URI;

describe('checkDeployment', () => {
  it('should accept a replica set member and a mongos of MongoDB 5.0 or later', () => {
    expect(() => checkDeployment({ isWritablePrimary: true, setName: 'rs0', maxWireVersion: 25 })).not.toThrow();
    expect(() => checkDeployment({ isWritablePrimary: true, msg: 'isdbgrid', maxWireVersion: 13 })).not.toThrow();
  });

  it('should refuse a standalone server, saying how to start a replica set', () => {
    const standalone = () => checkDeployment({ isWritablePrimary: true, maxWireVersion: 25 });
    expect(standalone).toThrow(StoreError);
    expect(standalone).toThrow(/replica set.*--replSet rs0.*rs\.initiate\(\).*directConnection=true/s);
  });

  it('should refuse a server older than MongoDB 5.0', () => {
    expect(() => checkDeployment({ setName: 'rs0', maxWireVersion: 12 })).toThrow(/5\.0 or later/);
    expect(() => checkDeployment({ msg: 'isdbgrid' })).toThrow(StoreError);
  });
});

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

  it('should create a collection without indexes when it is opened, and open it again', async () => {
    const store = await createMongoStore({ uri: uri!, database });
    const client = new MongoClient(uri!);
    try {
      await store.collection({ name: 'opened_plain', indexes: [] });
      await store.collection({ name: 'opened_plain', indexes: [] });
      expect(await client.db(database).listCollections({ name: 'opened_plain' }).toArray()).toHaveLength(1);
    } finally {
      await client.close();
      await store.close();
    }
  });
});
