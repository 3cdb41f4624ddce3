import { useState } from 'preact/hooks';
import { credentialProblem, type OidcConfig, type Session, saveSession, startOidcSignIn } from '../auth.js';

/**
 * Sign-in: paste a bearer token (a development token from `pnpm token`, the identity provider's, or
 * an API key), or, when the gateway names an identity provider, sign in there (OIDC with PKCE).
 */
export function SignIn({
  oidc,
  notice,
  onSignedIn,
}: {
  oidc: OidcConfig | null;
  notice?: string;
  onSignedIn: (session: Session) => void;
}) {
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState<string>();
  const [redirecting, setRedirecting] = useState(false);
  return (
    <main id="main" class="sign-in">
      <h1>Sign in to Fleetgraph</h1>
      {notice && (
        <p class="notice" role="alert">
          {notice}
        </p>
      )}
      {oidc && (
        <section aria-labelledby="sso-title">
          <h2 id="sso-title">With your organisation's account</h2>
          <button
            type="button"
            class="primary"
            disabled={redirecting}
            onClick={() => {
              setRedirecting(true);
              startOidcSignIn(oidc).catch((error: Error) => {
                setRedirecting(false);
                setProblem(`The identity provider cannot be reached: ${error.message}`);
              });
            }}
          >
            Sign in with {new URL(oidc.issuer).host}
          </button>
        </section>
      )}
      <section aria-labelledby="token-title">
        <h2 id="token-title">With a token</h2>
        <form
          onSubmit={(event) => {
            event.preventDefault();
            const value = token.trim().replace(/^Bearer\s+/i, '');
            const why = credentialProblem(value);
            if (why) return setProblem(why);
            onSignedIn(saveSession(value));
          }}
        >
          <label for="token">Bearer token or API key</label>
          <textarea
            id="token"
            name="token"
            rows={4}
            spellcheck={false}
            autocomplete="off"
            value={token}
            aria-invalid={problem ? 'true' : undefined}
            aria-describedby={problem ? 'token-problem token-help' : 'token-help'}
            onInput={(event) => setToken(event.currentTarget.value)}
          />
          {problem && (
            <p id="token-problem" class="field-error" role="alert">
              {problem}
            </p>
          )}
          <p id="token-help" class="help">
            In development, print a token with <code>pnpm token --tenant acme --project web=admin</code> (roles: admin,
            editor, viewer; <code>--tenant-admin</code> reads every project). It is kept in this tab only
            (sessionStorage) and forgotten when the tab closes.
          </p>
          <button type="submit" class="primary">
            Sign in
          </button>
        </form>
      </section>
    </main>
  );
}
