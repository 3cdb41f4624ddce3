import { type DocumentNode, Kind, print } from 'graphql';

/**
 * How an operation is sent: its document printed by graphql-js (the operation and the fragments
 * it uses, as the generated document holds them), and that text's SHA-256, which is its id in the
 * trusted-documents manifest and the `persistedQuery` hash of a request. Both are computed the
 * same way here for the manifest and for the requests, so they always agree.
 */

const bodies = new WeakMap<DocumentNode, string>();
const hashes = new WeakMap<DocumentNode, Promise<string>>();

/** The text sent for `document`. */
export function operationBody(document: DocumentNode): string {
  let body = bodies.get(document);
  if (body === undefined) {
    body = print(document);
    bodies.set(document, body);
  }
  return body;
}

/** The hex SHA-256 of `operationBody(document)`. */
export function operationHash(document: DocumentNode): Promise<string> {
  let hash = hashes.get(document);
  if (!hash) {
    hash = sha256(operationBody(document));
    hashes.set(document, hash);
  }
  return hash;
}

/** The name of the document's operation. @throws when it has no named operation */
export function operationName(document: DocumentNode): string {
  for (const definition of document.definitions)
    if (definition.kind === Kind.OPERATION_DEFINITION && definition.name) return definition.name.value;
  throw new Error('the document has no named operation');
}

/** The kind of the document's operation. */
export function operationType(document: DocumentNode): 'query' | 'mutation' | 'subscription' {
  for (const definition of document.definitions)
    if (definition.kind === Kind.OPERATION_DEFINITION) return definition.operation;
  throw new Error('the document has no operation');
}

async function sha256(text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}
