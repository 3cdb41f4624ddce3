import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@fleetgraph/kit/core';
import express, { type Express } from 'express';

/** The web dashboard the gateway serves at `/` (services/dashboard, built to static files). */
export interface DashboardOptions {
  /** The built dashboard: `index.html` and `assets/` (DASHBOARD_DIR). */
  dir: string;
  /** Sign-in with the organisation's identity provider (OIDC authorization code flow with PKCE). */
  oidc?: {
    /** The provider's issuer (AUTH_ISSUER): its discovery document is `<issuer>/.well-known/openid-configuration`. */
    issuer: string;
    /** The dashboard's public client id at the provider (DASHBOARD_OIDC_CLIENT_ID). */
    clientId: string;
    /** @default 'openid profile' */
    scope?: string;
  };
  /** How long to wait before reading the provider's discovery document again after a failure. @default 30000 */
  discoveryRetryMs?: number;
}

/**
 * Adds the origin of the provider's token endpoint to the page's `connect-src` (`connect`), read
 * from its discovery document: many providers serve it elsewhere than the issuer (AWS Cognito:
 * `<domain>.auth.<region>.amazoncognito.com`), and the page POSTs the code there. Until the
 * document is read (tried again every `retryMs`), the issuer's origin alone is allowed.
 */
async function allowTokenEndpoint(issuer: string, connect: string[], log: Logger, retryMs: number): Promise<void> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const { token_endpoint: endpoint } = (await response.json()) as { token_endpoint?: unknown };
      if (typeof endpoint !== 'string') throw new Error('no token_endpoint');
      const origin = new URL(endpoint).origin;
      if (!connect.includes(origin)) connect.push(origin);
      return;
    } catch (error) {
      log.warn({ err: error, url }, "could not read the identity provider's discovery document; trying again");
      await new Promise((resolve) => setTimeout(resolve, retryMs).unref());
    }
  }
}

/** What the dashboard reads at start, from `/dashboard/config.json`. */
export interface DashboardConfig {
  oidc: { issuer: string; clientId: string; scope: string } | null;
}

/** Paths of the gateway that the dashboard's client-side routes never stand for. */
const GATEWAY_PATHS = ['/graphql', '/healthz', '/readyz', '/metrics', '/logs', '/assets', '/dashboard'];

const reserved = (path: string) => GATEWAY_PATHS.some((p) => path === p || path.startsWith(`${p}/`));

/**
 * Serves the dashboard: `/assets/*` (content-hashed names, cached for a year), `/dashboard/config.json`,
 * and `index.html` (never cached, so a new build is picked up at once) for `/` and every client-side
 * route (a GET for HTML of a path that is none of the gateway's own). Mounted after the gateway's
 * routes, so it shadows none of them. Returns false, serving the config alone, when the dashboard
 * has not been built.
 */
export function mountDashboard(app: Express, options: DashboardOptions, log: Logger): boolean {
  const config: DashboardConfig = {
    oidc: options.oidc
      ? { issuer: options.oidc.issuer, clientId: options.oidc.clientId, scope: options.oidc.scope ?? 'openid profile' }
      : null,
  };
  app.get('/dashboard/config.json', (_req, res) => {
    res.setHeader('cache-control', 'no-cache');
    res.json(config);
  });
  const index = join(options.dir, 'index.html');
  if (!existsSync(index)) {
    log.warn({ dir: options.dir }, 'the dashboard is not built (pnpm build): not served');
    return false;
  }
  // The page talks to this gateway (and, for OIDC sign-in, to the provider's token endpoint) only.
  const connect = ["'self'", 'ws:', 'wss:', ...(options.oidc ? [new URL(options.oidc.issuer).origin] : [])];
  if (options.oidc) void allowTokenEndpoint(options.oidc.issuer, connect, log, options.discoveryRetryMs ?? 30_000);
  const securityHeaders = (res: express.Response) => {
    res.setHeader(
      'content-security-policy',
      `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src ${connect.join(' ')}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'`,
    );
    res.setHeader('x-content-type-options', 'nosniff');
    // The OIDC callback carries the authorization code in its URL: never sent on as a referrer.
    res.setHeader('referrer-policy', 'no-referrer');
  };
  app.use(
    '/assets',
    express.static(join(options.dir, 'assets'), {
      index: false,
      redirect: false,
      fallthrough: false,
      immutable: true,
      maxAge: '365d',
    }),
  );
  const serveIndex: express.RequestHandler = (req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || reserved(req.path) || !req.accepts('html')) return next();
    res.setHeader('cache-control', 'no-cache');
    securityHeaders(res);
    res.sendFile(index, (error) => error && next(error));
  };
  app.use(serveIndex);
  log.info({ dir: options.dir }, 'serving the dashboard at /');
  return true;
}
