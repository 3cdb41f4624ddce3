import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { Api, ApiError, LiveStatus } from './api.js';
import type { Session } from './auth.js';

export interface AppContext {
  api: Api;
  session: Session;
  signOut(reason?: string): void;
}

export const App = createContext<AppContext | null>(null);

export function useApp(): AppContext {
  const app = useContext(App);
  if (!app) throw new Error('useApp outside the signed-in app');
  return app;
}

export interface QueryState<R> {
  data: R | undefined;
  error: ApiError | undefined;
  loading: boolean;
  /** Runs the query again, keeping what is shown until the answer comes. */
  refetch(): Promise<void>;
}

/** A query, run when `key` changes (and on refetch); the last answer stays shown while the next one comes. */
export function useQuery<R, V extends Record<string, unknown>>(
  document: TypedDocumentNode<R, V>,
  variables: V,
  key: string,
): QueryState<R> {
  const { api } = useApp();
  const [data, setData] = useState<R>();
  const [error, setError] = useState<ApiError>();
  const [loading, setLoading] = useState(true);
  const latest = useRef(0);
  const vars = useRef(variables);
  vars.current = variables;
  const run = useCallback(async () => {
    const mine = ++latest.current;
    try {
      const result = await api.request(document, vars.current);
      if (mine !== latest.current) return;
      setData(result);
      setError(undefined);
    } catch (failure) {
      if (mine === latest.current) setError(failure as ApiError);
    } finally {
      if (mine === latest.current) setLoading(false);
    }
  }, [api, document]);
  useEffect(() => {
    setLoading(true);
    void run();
  }, [run, key]);
  return { data, error, loading, refetch: run };
}

/**
 * A subscription while the component is shown and `variables` is not null (resubscribed when `key`
 * changes). `onData` may change between renders: the latest one is called.
 */
export function useSubscription<R, V extends Record<string, unknown>>(
  document: TypedDocumentNode<R, V>,
  variables: V | null,
  key: string,
  onData: (data: R) => void,
  onError?: (error: ApiError) => void,
): void {
  const { api } = useApp();
  const handlers = useRef({ onData, onError });
  handlers.current = { onData, onError };
  const vars = useRef(variables);
  vars.current = variables;
  useEffect(() => {
    if (!vars.current) return;
    return api.subscribe(
      document,
      vars.current,
      (data) => handlers.current.onData(data),
      (error) => handlers.current.onError?.(error),
    );
  }, [api, document, key]);
}

/** The live connection's status. */
export function useLiveStatus(): LiveStatus {
  const { api } = useApp();
  const [status, setStatus] = useState(api.status());
  useEffect(() => {
    setStatus(api.status());
    return api.onStatus(setStatus);
  }, [api]);
  return status;
}

/** Calls `effect` each time the live connection comes back (to refetch what subscriptions do not replay). */
export function useOnReconnect(effect: () => void): void {
  const { api } = useApp();
  const latest = useRef(effect);
  latest.current = effect;
  useEffect(() => {
    let previous = api.status();
    return api.onStatus((status) => {
      if (status === 'live' && previous === 'lost') latest.current();
      previous = status;
    });
  }, [api]);
}
