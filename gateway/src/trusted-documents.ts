import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '@fleetgraph/kit/core';
import type { RequestHandler } from 'express';
import { Kind, parse } from 'graphql';
import { requestErrorStatus, sendErrors } from './graphql-over-http.js';

/**
 * Trusted documents (persisted operations): a manifest of the operations a deployment's own
 * clients send, in Apollo's persisted query manifest format, and what the gateway does with an
 * operation that is not in it:
 *
 * - `off`: nothing; automatic persisted queries work as Apollo Server makes them (a hash alone
 *   is looked up in each replica's own memory, so a client may be told PERSISTED_QUERY_NOT_FOUND
 *   by a replica that has not seen the document yet, and then sends it whole, as the protocol
 *   says);
 * - `log`: every operation runs; one that is not in the manifest is logged (name and hash);
 * - `enforce`: only the manifest's operations run; a request may send the hash alone
 *   (`extensions.persistedQuery.sha256Hash`), and a document that is not in the manifest is
 *   refused with PERSISTED_QUERY_NOT_IN_LIST whatever the transport (HTTP, graphql-ws, SSE).
 *   Automatic registration is off: in this mode the manifest is the only source of hashes.
 *
 * The same manifest serves every replica, so they all answer alike.
 */

export type TrustedDocumentsMode = 'off' | 'log' | 'enforce';

/** What a request carries of its document. */
export interface OperationRequest {
  query?: unknown;
  extensions?: unknown;
  operationName?: unknown;
}

/** A request's document, or why it may not run. */
export type Resolution =
  | { ok: true; query: string | undefined }
  | { ok: false; code: 'PERSISTED_QUERY_NOT_FOUND' | 'PERSISTED_QUERY_NOT_IN_LIST' | 'BAD_REQUEST'; message: string };

export interface TrustedDocuments {
  readonly mode: TrustedDocumentsMode;
  /** Operations in the manifest. */
  readonly size: number;
  /** The names of the manifest's operations (the gateway's metrics label these as they are). */
  readonly operationNames: ReadonlySet<string>;
  /**
   * The document a request runs: its own `query`, or the manifest's body for its hash. In
   * `enforce` mode only a document of the manifest; in `log` mode anything, logging strangers.
   * `{ ok: true, query: undefined }` leaves the request as it is (mode `off`, or a hash alone
   * that Apollo Server's automatic persisted queries answer).
   */
  resolve(request: OperationRequest): Resolution;
}

interface ManifestOperation {
  id: string;
  name?: string;
  type?: string;
  body: string;
}

/**
 * Reads the manifests at `paths` (comma-separated in the environment) and returns the checker.
 * @throws when a manifest cannot be read, is not in Apollo's format, or an id is not the SHA-256
 *   of its body
 */
export async function loadTrustedDocuments(
  mode: TrustedDocumentsMode,
  paths: readonly string[],
  log: Logger,
): Promise<TrustedDocuments> {
  const byHash = new Map<string, string>();
  if (mode !== 'off') {
    if (paths.length === 0) throw new Error(`TRUSTED_DOCUMENTS=${mode} needs TRUSTED_DOCUMENTS_MANIFEST`);
    for (const path of paths)
      for (const operation of parseManifest(await readFile(path, 'utf8'), path))
        byHash.set(operation.id, operation.body);
  }
  return createTrustedDocuments(mode, byHash, log);
}

/** Checks a manifest's text; returns its operations. @throws naming what is wrong */
export function parseManifest(text: string, source: string): ManifestOperation[] {
  let manifest: { format?: unknown; version?: unknown; operations?: unknown };
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source}: not JSON (${(error as Error).message})`);
  }
  if (
    manifest.format !== 'apollo-persisted-query-manifest' ||
    manifest.version !== 1 ||
    !Array.isArray(manifest.operations)
  )
    throw new Error(
      `${source}: not an Apollo persisted query manifest (format "apollo-persisted-query-manifest", version 1)`,
    );
  return manifest.operations.map((operation: Partial<ManifestOperation>, i: number) => {
    if (typeof operation?.id !== 'string' || typeof operation.body !== 'string')
      throw new Error(`${source}: operation ${i} needs an id and a body`);
    if (sha256(operation.body) !== operation.id)
      throw new Error(`${source}: operation ${operation.name ?? i}: its id is not the SHA-256 of its body`);
    return operation as ManifestOperation;
  });
}

export function createTrustedDocuments(
  mode: TrustedDocumentsMode,
  byHash: ReadonlyMap<string, string>,
  log: Logger,
): TrustedDocuments {
  const logged = new Set<string>();
  let names: Set<string> | undefined;
  return {
    mode,
    size: byHash.size,
    get operationNames() {
      names ??= new Set(
        [...byHash.values()].flatMap((body) =>
          parse(body).definitions.flatMap((d) =>
            d.kind === Kind.OPERATION_DEFINITION && d.name ? [d.name.value] : [],
          ),
        ),
      );
      return names;
    },
    resolve(request) {
      if (mode === 'off') return { ok: true, query: undefined };
      const hash = persistedHash(request.extensions);
      if (hash === null)
        return {
          ok: false,
          code: 'BAD_REQUEST',
          message: 'extensions.persistedQuery.sha256Hash must be a hex SHA-256',
        };
      const query = typeof request.query === 'string' ? request.query : undefined;
      if (query === undefined) {
        if (hash === undefined) return { ok: true, query: undefined };
        const body = byHash.get(hash);
        if (body !== undefined) return { ok: true, query: body };
        return mode === 'enforce'
          ? { ok: false, code: 'PERSISTED_QUERY_NOT_FOUND', message: `no trusted document has the hash ${hash}` }
          : { ok: true, query: undefined };
      }
      const queryHash = sha256(query);
      if (hash !== undefined && hash !== queryHash)
        return {
          ok: false,
          code: 'BAD_REQUEST',
          message: 'extensions.persistedQuery.sha256Hash is not the SHA-256 of the query',
        };
      if (byHash.has(queryHash)) return { ok: true, query };
      if (mode === 'enforce')
        return {
          ok: false,
          code: 'PERSISTED_QUERY_NOT_IN_LIST',
          message: 'this gateway runs trusted documents only, and this operation is not one of them',
        };
      // `log`: once per document, not per request.
      if (!logged.has(queryHash) && logged.size < 10_000) {
        logged.add(queryHash);
        const operationName = typeof request.operationName === 'string' ? request.operationName : undefined;
        log.warn({ operationName, hash: queryHash }, 'an operation that is not a trusted document ran');
      }
      return { ok: true, query };
    },
  };
}

/** The request's persisted-query hash: undefined without one, null when malformed. */
function persistedHash(extensions: unknown): string | undefined | null {
  if (typeof extensions !== 'object' || extensions === null) return undefined;
  const persisted = (extensions as { persistedQuery?: unknown }).persistedQuery;
  if (persisted === undefined) return undefined;
  const hash = (persisted as { sha256Hash?: unknown } | null)?.sha256Hash;
  return typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash) ? hash : null;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The HTTP side of trusted documents, after the body is parsed: a request refused is answered
 * here (a request error, as GraphQL over HTTP says); one sent by a manifest hash alone goes on
 * with the manifest's document. In `enforce` mode the persisted-query extension is removed once
 * resolved, as Apollo Server's automatic persisted queries are off then.
 */
export function trustedDocumentsHttp(trusted: TrustedDocuments): RequestHandler {
  return (req, res, next) => {
    const get = req.method === 'GET';
    const url = get ? new URL(req.url, 'http://gateway') : undefined;
    let request: OperationRequest;
    if (url) {
      let extensions: unknown;
      try {
        extensions = JSON.parse(url.searchParams.get('extensions') ?? 'null');
      } catch {
        extensions = undefined;
      }
      request = {
        query: url.searchParams.get('query') ?? undefined,
        extensions,
        operationName: url.searchParams.get('operationName'),
      };
    } else {
      request = (req.body ?? {}) as OperationRequest;
    }
    const resolved = trusted.resolve(request);
    if (!resolved.ok) {
      sendErrors(
        req,
        res,
        [{ message: resolved.message, extensions: { code: resolved.code } }],
        resolved.code === 'BAD_REQUEST' ? 400 : requestErrorStatus,
      );
      return;
    }
    if (resolved.query === undefined) return next();
    const extensions = withoutPersistedQuery(request.extensions, trusted.mode === 'enforce');
    if (url) {
      url.searchParams.set('query', resolved.query);
      if (extensions === undefined) url.searchParams.delete('extensions');
      else url.searchParams.set('extensions', JSON.stringify(extensions));
      req.url = `${url.pathname}${url.search}`;
    } else {
      const { extensions: _, ...body } = req.body as Record<string, unknown>;
      req.body =
        extensions === undefined ? { ...body, query: resolved.query } : { ...body, query: resolved.query, extensions };
    }
    next();
  };
}

/** `extensions` without `persistedQuery` when `remove`; undefined when nothing is left. */
function withoutPersistedQuery(extensions: unknown, remove: boolean): unknown {
  if (!remove || typeof extensions !== 'object' || extensions === null) return extensions ?? undefined;
  const { persistedQuery: _, ...rest } = extensions as Record<string, unknown>;
  return Object.keys(rest).length > 0 ? rest : undefined;
}
