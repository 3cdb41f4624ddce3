import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createLogger } from '@fleetgraph/kit/core';
import { describe, expect, it } from 'vitest';
import { createTrustedDocuments, loadTrustedDocuments, parseManifest } from './trusted-documents.js';

const log = createLogger('trusted-documents-test', 'silent');
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const listed = 'query Clusters { clusters { nodes { id } } }';
const stranger = 'query Other { clusters { nodes { name } } }';
const manifest = new Map([[sha256(listed), listed]]);
const projectManifest = fileURLToPath(new URL('../../client/persisted-query-manifest.json', import.meta.url));

describe('trusted documents', () => {
  it('should run only listed documents in enforce mode, by body or by hash alone', () => {
    const trusted = createTrustedDocuments('enforce', manifest, log);
    expect(trusted.resolve({ query: listed })).toEqual({ ok: true, query: listed });
    expect(trusted.resolve({ extensions: { persistedQuery: { version: 1, sha256Hash: sha256(listed) } } })).toEqual({
      ok: true,
      query: listed,
    });
    expect(trusted.resolve({ query: stranger })).toMatchObject({ ok: false, code: 'PERSISTED_QUERY_NOT_IN_LIST' });
    expect(trusted.resolve({ extensions: { persistedQuery: { sha256Hash: sha256(stranger) } } })).toMatchObject({
      ok: false,
      code: 'PERSISTED_QUERY_NOT_FOUND',
    });
    // A listed hash cannot carry another body in.
    expect(
      trusted.resolve({ query: stranger, extensions: { persistedQuery: { sha256Hash: sha256(listed) } } }),
    ).toMatchObject({
      ok: false,
      code: 'BAD_REQUEST',
    });
    expect(trusted.resolve({ extensions: { persistedQuery: { sha256Hash: 'not-a-hash' } } })).toMatchObject({
      ok: false,
      code: 'BAD_REQUEST',
    });
  });

  it('should run everything in log mode and off, leaving a hash it does not know to Apollo Server', () => {
    for (const mode of ['log', 'off'] as const) {
      const trusted = createTrustedDocuments(mode, manifest, log);
      expect(trusted.resolve({ query: stranger })).toEqual({ ok: true, query: mode === 'off' ? undefined : stranger });
      expect(trusted.resolve({ extensions: { persistedQuery: { sha256Hash: sha256(stranger) } } })).toEqual({
        ok: true,
        query: undefined,
      });
    }
  });

  it('should refuse a manifest that is not in Apollo format or whose ids are not the hashes of their bodies', () => {
    expect(() => parseManifest('{', 'm.json')).toThrow(/not JSON/);
    expect(() => parseManifest('{"operations": []}', 'm.json')).toThrow(/not an Apollo persisted query manifest/);
    const wrong = {
      format: 'apollo-persisted-query-manifest',
      version: 1,
      operations: [{ id: sha256('x'), name: 'Q', body: listed }],
    };
    expect(() => parseManifest(JSON.stringify(wrong), 'm.json')).toThrow(/Q: its id is not the SHA-256 of its body/);
  });

  it("should load the project's own manifest (client/persisted-query-manifest.json)", async () => {
    const trusted = await loadTrustedDocuments('enforce', [projectManifest], log);
    const { operations } = JSON.parse(await readFile(projectManifest, 'utf8')) as { operations: { body: string }[] };
    expect(trusted.size).toBe(operations.length);
    for (const { body } of operations) expect(trusted.resolve({ query: body })).toEqual({ ok: true, query: body });
  });
});
