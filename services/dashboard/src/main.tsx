import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { createApi } from './api.js';
import { clearSession, completeOidcSignIn, loadSession, type OidcConfig, type Session } from './auth.js';
import { LiveBanner } from './components/LiveBanner.js';
import { App, useApp } from './hooks.js';
import { ClusterPage } from './pages/ClusterPage.js';
import { Overview } from './pages/Overview.js';
import { Profiles } from './pages/Profiles.js';
import { SignIn } from './pages/SignIn.js';
import { Link, navigate, useLocation } from './router.js';
import './styles.css';

/** What the gateway tells the dashboard at start (/dashboard/config.json). */
interface DashboardConfig {
  oidc: OidcConfig | null;
}

async function loadConfig(): Promise<DashboardConfig> {
  try {
    const response = await fetch(new URL('/dashboard/config.json', location.href));
    if (response.ok) return (await response.json()) as DashboardConfig;
  } catch {
    // Hosted elsewhere without the gateway's config: token sign-in only.
  }
  return { oidc: null };
}

function Shell() {
  const { session, signOut } = useApp();
  const url = useLocation();
  const path = url.pathname;
  const cluster = /^\/clusters\/([^/]+)$/.exec(path);
  const page = cluster?.[1] ? (
    <ClusterPage id={decodeURIComponent(cluster[1])} />
  ) : path === '/profiles' ? (
    <Profiles />
  ) : path === '/' ? (
    <Overview />
  ) : (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Not found
      </h1>
      <p>
        Nothing here. <Link href="/">Back to the fleet</Link>.
      </p>
    </section>
  );
  const claims = session.claims;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <nav aria-label="Main">
          <Link href="/" class="brand">
            Fleetgraph
          </Link>
          <Link href="/" aria-current={path === '/' || cluster ? 'page' : undefined}>
            Fleet
          </Link>
          <Link href="/profiles" aria-current={path === '/profiles' ? 'page' : undefined}>
            Profiles
          </Link>
        </nav>
        <div class="user">
          <span>
            {claims?.sub ?? 'API key'}
            {claims?.tenantId ? ` · ${claims.tenantId}` : ''}
            {claims?.tenantAdmin ? ' · tenant admin' : ''}
          </span>
          <button type="button" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <LiveBanner />
      <main id="main">{page}</main>
    </>
  );
}

function Root() {
  // Rendered at once (first paint does not wait for the config, which only adds the OIDC sign-in).
  const [config, setConfig] = useState<DashboardConfig>({ oidc: null });
  useEffect(() => void loadConfig().then(setConfig), []);
  const [session, setSession] = useState<Session | null>(loadSession);
  const [notice, setNotice] = useState<string>();
  const [callbackError, setCallbackError] = useState<string>();
  const url = useLocation();

  // The identity provider sends the browser back here with a code to exchange.
  useEffect(() => {
    if (url.pathname !== '/auth/callback' || !config.oidc) return;
    completeOidcSignIn(config.oidc)
      .then(({ session: signedIn, returnTo }) => {
        setSession(signedIn);
        navigate(returnTo, true);
      })
      .catch((error: Error) => {
        setCallbackError(error.message);
        navigate('/', true);
      });
  }, [url.pathname, config.oidc]);

  const app = useMemo(() => {
    if (!session) return null;
    const signOut = (reason?: string) => {
      clearSession();
      setNotice(reason ? `You were signed out: ${reason}` : undefined);
      setSession(null);
    };
    return { session, api: createApi(session.token, (reason) => signOut(reason)), signOut };
  }, [session]);
  useEffect(() => () => app?.api.close(), [app]);

  if (!app || url.pathname === '/auth/callback')
    return (
      <SignIn
        oidc={config.oidc}
        notice={callbackError ?? notice}
        onSignedIn={(signedIn) => {
          setNotice(undefined);
          setSession(signedIn);
        }}
      />
    );
  return (
    <App.Provider value={app}>
      <Shell />
    </App.Provider>
  );
}

const root = document.getElementById('app');
if (root) render(<Root />, root);
