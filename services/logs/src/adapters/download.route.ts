import { pipeline } from 'node:stream/promises';
import type { Logger } from '@fleetgraph/kit';
import type { Express, Response } from 'express';
import type { BlobStore } from '../domain/blob-store.js';
import type { BundleRepository } from './bundle.repo.js';
import { DOWNLOAD_PATH, DownloadTokenError, type DownloadLinks } from './download-links.js';

export interface DownloadRouteDeps {
  links: DownloadLinks;
  bundles: BundleRepository;
  blobs: BlobStore;
  log: Logger;
}

const refuse = (res: Response, status: 403 | 404, message: string) => {
  res.status(status).set('Cache-Control', 'no-store').json({ error: message });
};

/** `attachment` with the name as given, and its RFC 5987 form for names beyond ASCII. */
function contentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`;
}

/**
 * `GET /logs/download/<bundleId>/<fileName>?token=<jwt>`: streams a READY bundle's archive to
 * whoever holds a valid link, with `Content-Disposition: attachment`. A missing, malformed,
 * badly signed or expired token gets 403; a token for another bundle or tenant, or a bundle
 * that is not READY or whose archive expired, gets 404. Neither sends a byte of any archive.
 */
export function downloadRoutes(deps: DownloadRouteDeps): (app: Express) => void {
  return (app) => {
    app.get(`${DOWNLOAD_PATH}/:bundleId/:fileName`, async (req, res) => {
      const token = typeof req.query.token === 'string' ? req.query.token : undefined;
      let grant: { bundleId: string; tenantId: string };
      try {
        grant = await deps.links.verify(token);
      } catch (error) {
        if (error instanceof DownloadTokenError) return refuse(res, 403, error.message);
        throw error;
      }
      const { bundleId, fileName } = req.params;
      if (grant.bundleId !== bundleId) return refuse(res, 404, 'no such log bundle');
      const bundle = await deps.bundles.getInTenant(grant.tenantId, bundleId);
      if (bundle?.status !== 'READY' || bundle.fileName !== fileName) return refuse(res, 404, 'no such log bundle');
      const blob = await deps.blobs.open(bundle.id);
      if (!blob) return refuse(res, 404, 'the archive has expired');

      res.status(200).set({
        'Content-Type': 'application/zip',
        'Content-Length': String(blob.info.size),
        'Content-Disposition': contentDisposition(bundle.fileName),
        // The link is the credential: keep it out of caches and of other sites' logs.
        'Cache-Control': 'private, no-store',
        'Referrer-Policy': 'no-referrer',
        'X-Content-Type-Options': 'nosniff',
      });
      try {
        await pipeline(blob.stream, res);
      } catch (error) {
        // Most often the client went away; the response cannot change any more.
        deps.log.debug({ err: error, bundleId }, 'log bundle download ended early');
      }
    });
  };
}
