/** Test helpers shared by the subscription suites (graphql-ws and SSE clients alike). */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- results are read field by field in tests
export type Result = { data?: Record<string, any> | null; errors?: readonly unknown[] };

/** What graphql-ws's and graphql-sse's clients both offer. */
export interface SubscribingClient {
  subscribe(
    payload: { query: string; variables?: Record<string, unknown> },
    sink: { next(value: unknown): void; error(error: unknown): void; complete(): void },
  ): () => void;
}

/** One subscription's results as they arrive. */
export interface Watcher {
  results: Result[];
  error?: unknown;
  completed: boolean;
  /** Settles when the subscription completes or fails. */
  done: Promise<void>;
  /** Resolves once `count` results arrived. */
  until(count: number, timeoutMs?: number): Promise<void>;
  /** Keeps no result that arrives from now on. */
  freeze(): void;
  /** Unsubscribes. */
  stop(): void;
}

export function watch(client: SubscribingClient, query: string, variables: Record<string, unknown>): Watcher {
  let finish!: () => void;
  const waiters = new Set<() => void>();
  let frozen = false;
  const watcher: Watcher = {
    results: [],
    completed: false,
    done: new Promise<void>((resolve) => (finish = resolve)),
    until(count, timeoutMs = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (watcher.results.length < count) return false;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`got ${watcher.results.length} of ${count} results (error: ${JSON.stringify(watcher.error)})`),
          );
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    freeze: () => {
      frozen = true;
    },
    stop: () => {},
  };
  watcher.stop = client.subscribe(
    { query, variables },
    {
      next: (result) => {
        if (frozen) return;
        watcher.results.push(result as Result);
        for (const check of [...waiters]) check();
      },
      error: (error) => {
        watcher.error = error;
        finish();
      },
      complete: () => {
        watcher.completed = true;
        finish();
      },
    },
  );
  return watcher;
}

export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
