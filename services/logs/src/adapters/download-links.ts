import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { LogBundle } from '../domain/bundle.js';

const AUDIENCE = 'fleetgraph-log-download';
const ISSUER = 'fleetgraph-logs';

/** The path the logs service serves archives under; the gateway proxies it unchanged. */
export const DOWNLOAD_PATH = '/logs/download';

/** A download token that does not hold: missing, malformed, badly signed or expired. */
export class DownloadTokenError extends Error {
  constructor(
    readonly reason: 'invalid' | 'expired',
    options?: ErrorOptions,
  ) {
    super(reason === 'expired' ? 'the download link has expired' : 'the download link is not valid', options);
    this.name = 'DownloadTokenError';
  }
}

export interface DownloadLinksOptions {
  /** Signs the tokens (HS256); at least 32 characters. */
  secret: string;
  /** Where clients reach the gateway, e.g. `https://fleet.example.com`; links start with it. */
  publicUrl: string;
  /** How long a link holds. */
  ttlSeconds: number;
}

/**
 * Signed, time-limited download links: `<publicUrl>/logs/download/<bundleId>/<fileName>?token=<jwt>`,
 * the token an HS256 JWT naming the bundle and its tenant, for this audience only, expiring after
 * the TTL (never after the archive). The link needs no other credential, so it is minted only for
 * a caller who may read the bundle, and only for as long as a download takes to start.
 */
export class DownloadLinks {
  private readonly key: Uint8Array;
  private readonly base: URL;

  constructor(private readonly options: DownloadLinksOptions) {
    if (options.secret.length < 32) throw new RangeError('the download secret must be at least 32 characters');
    this.key = new TextEncoder().encode(options.secret);
    this.base = new URL(options.publicUrl.endsWith('/') ? options.publicUrl : `${options.publicUrl}/`);
  }

  /** A fresh link to a READY bundle's archive, or null for any other bundle. */
  async urlFor(bundle: LogBundle, now = new Date()): Promise<string | null> {
    if (bundle.status !== 'READY' || !bundle.fileName) return null;
    const expires = Math.min(now.getTime() + this.options.ttlSeconds * 1000, Date.parse(bundle.expiresAt));
    if (expires <= now.getTime()) return null;
    const token = await this.sign({ bundleId: bundle.id, tenantId: bundle.tenantId }, new Date(expires), now);
    const url = new URL(
      `${DOWNLOAD_PATH.slice(1)}/${encodeURIComponent(bundle.id)}/${encodeURIComponent(bundle.fileName)}`,
      this.base,
    );
    url.searchParams.set('token', token);
    return url.toString();
  }

  /** Signs a token for a bundle, valid until `expiresAt`. */
  sign(claims: { bundleId: string; tenantId: string }, expiresAt: Date, now = new Date()): Promise<string> {
    return new SignJWT({ bid: claims.bundleId, tid: claims.tenantId })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(Math.floor(now.getTime() / 1000))
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.key);
  }

  /** The bundle and tenant a token grants. @throws DownloadTokenError */
  async verify(token: string | undefined): Promise<{ bundleId: string; tenantId: string }> {
    if (!token) throw new DownloadTokenError('invalid');
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        audience: AUDIENCE,
        issuer: ISSUER,
        clockTolerance: 0,
      });
      if (typeof payload.bid !== 'string' || typeof payload.tid !== 'string' || typeof payload.exp !== 'number')
        throw new DownloadTokenError('invalid');
      return { bundleId: payload.bid, tenantId: payload.tid };
    } catch (error) {
      if (error instanceof DownloadTokenError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw new DownloadTokenError('expired', { cause: error });
      throw new DownloadTokenError('invalid', { cause: error });
    }
  }
}
