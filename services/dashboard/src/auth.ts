/**
 * The signed-in user: a bearer token kept in sessionStorage (gone with the tab; never
 * localStorage, where every later page of the origin could read it), and what its claims say
 * about the user's roles, to hide actions the API would refuse anyway.
 */

export type Role = 'admin' | 'editor' | 'viewer';

export interface Claims {
  sub?: string;
  tenantId?: string;
  tenantAdmin?: boolean;
  projects?: Record<string, Role>;
  exp?: number;
}

export interface Session {
  token: string;
  /** The token's claims when it is a JWT with the development claims; null for an API key or another shape. */
  claims: Claims | null;
}

const TOKEN_KEY = 'fleetgraph.token';
const OIDC_KEY = 'fleetgraph.oidc';

function base64UrlDecode(text: string): string {
  const padded = text
    .replace(/-/g, '+')
    .replace(/_/g, '/')
    .padEnd(Math.ceil(text.length / 4) * 4, '=');
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The claims of a JWT, unverified (the gateway verifies; this only shapes the page). */
export function decodeClaims(token: string): Claims | null {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1])) as Claims;
    return typeof claims === 'object' && claims !== null ? claims : null;
  } catch {
    return null;
  }
}

/** Why a pasted credential cannot be one, or undefined when it looks like a JWT or an API key. */
export function credentialProblem(token: string): string | undefined {
  if (!token) return 'Paste a token.';
  if (/^fgk_[A-Za-z0-9_-]+$/.test(token)) return undefined;
  if (!decodeClaims(token)) return 'This is neither a token (three parts separated by dots) nor an API key (fgk_…).';
  const exp = decodeClaims(token)?.exp;
  if (typeof exp === 'number' && exp * 1000 < Date.now()) return 'This token has expired: get a new one.';
  return undefined;
}

export function loadSession(): Session | null {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { token, claims: decodeClaims(token) } : null;
}

export function saveSession(token: string): Session {
  sessionStorage.setItem(TOKEN_KEY, token);
  return { token, claims: decodeClaims(token) };
}

export function clearSession(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * The user's role in a project as the token claims it: undefined when the token does not say
 * (an API key, an identity provider's token with other claims), in which case every action is
 * offered and the API decides.
 */
export function roleIn(session: Session, projectId: string): Role | null | undefined {
  const projects = session.claims?.projects;
  if (!projects || typeof projects !== 'object') return undefined;
  return projects[projectId] ?? null;
}

/** Whether the user may change clusters of the project (editors and admins), as far as the token tells. */
export function canChange(session: Session, projectId: string): boolean {
  const role = roleIn(session, projectId);
  return role === undefined || role === 'admin' || role === 'editor';
}

// --- OIDC: the authorization code flow with PKCE (RFC 7636), for a public client ---

export interface OidcConfig {
  issuer: string;
  clientId: string;
  scope: string;
}

interface PendingSignIn {
  verifier: string;
  state: string;
  tokenEndpoint: string;
  returnTo: string;
}

const redirectUri = () => new URL('/auth/callback', location.href).href;

function randomString(bytes: number): string {
  return base64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}

async function discover(issuer: string): Promise<{ authorization_endpoint: string; token_endpoint: string }> {
  const response = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`the identity provider answered ${response.status}`);
  return response.json();
}

/** Sends the browser to the identity provider's sign-in page. */
export async function startOidcSignIn(config: OidcConfig): Promise<void> {
  const { authorization_endpoint, token_endpoint } = await discover(config.issuer);
  const verifier = randomString(48);
  const challenge = base64Url(
    new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))),
  );
  const pending: PendingSignIn = {
    verifier,
    state: randomString(24),
    tokenEndpoint: token_endpoint,
    returnTo: location.pathname === '/auth/callback' ? '/' : location.pathname,
  };
  sessionStorage.setItem(OIDC_KEY, JSON.stringify(pending));
  const url = new URL(authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.clientId,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state: pending.state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.href);
}

/**
 * Finishes the sign-in at /auth/callback: checks the state, exchanges the code with the verifier,
 * and keeps the access token when it is a JWT (else the ID token). Returns where to go next.
 */
export async function completeOidcSignIn(config: OidcConfig): Promise<{ session: Session; returnTo: string }> {
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(OIDC_KEY) ?? 'null') as PendingSignIn | null;
  sessionStorage.removeItem(OIDC_KEY);
  if (params.get('error')) throw new Error(params.get('error_description') ?? params.get('error') ?? 'sign-in failed');
  if (!pending || params.get('state') !== pending.state)
    throw new Error('This sign-in was not started here: try again.');
  const response = await fetch(pending.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code') ?? '',
      redirect_uri: redirectUri(),
      client_id: config.clientId,
      code_verifier: pending.verifier,
    }),
  });
  if (!response.ok) throw new Error(`the identity provider refused the sign-in (${response.status})`);
  const tokens = (await response.json()) as { access_token?: string; id_token?: string };
  const token = tokens.access_token && decodeClaims(tokens.access_token) ? tokens.access_token : tokens.id_token;
  if (!token) throw new Error('the identity provider gave no token');
  return { session: saveSession(token), returnTo: pending.returnTo };
}
