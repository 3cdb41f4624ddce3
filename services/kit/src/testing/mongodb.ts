import { MongoClient } from 'mongodb';

/**
 * Drops a MongoDB database: what a suite run against MONGODB_URI in a fresh database of its own
 * (`fleetgraph_test_<random>`, as the store contract does) leaves behind.
 */
export async function dropMongoDatabase(uri: string, database: string): Promise<void> {
  const client = new MongoClient(uri);
  try {
    await client.db(database).dropDatabase();
  } finally {
    await client.close();
  }
}
