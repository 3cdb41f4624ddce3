import type { DocumentNode } from 'graphql';
import { operationBody, operationHash, operationName, operationType } from './documents.js';

/** One operation of a trusted-documents manifest. */
export interface ManifestOperation {
  /** The hex SHA-256 of `body`: what a request sends as `extensions.persistedQuery.sha256Hash`. */
  id: string;
  name: string;
  type: 'query' | 'mutation' | 'subscription';
  body: string;
}

/** A trusted-documents manifest in Apollo's persisted query manifest format. */
export interface PersistedQueryManifest {
  format: 'apollo-persisted-query-manifest';
  version: 1;
  operations: ManifestOperation[];
}

/** The manifest of `documents` (each with one named operation), sorted by name. */
export async function buildManifest(documents: Iterable<DocumentNode>): Promise<PersistedQueryManifest> {
  const operations: ManifestOperation[] = [];
  for (const document of documents)
    operations.push({
      id: await operationHash(document),
      name: operationName(document),
      type: operationType(document),
      body: operationBody(document),
    });
  operations.sort((a, b) => a.name.localeCompare(b.name));
  return { format: 'apollo-persisted-query-manifest', version: 1, operations };
}
