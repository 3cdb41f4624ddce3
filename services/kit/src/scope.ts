import { AsyncLocalStorage } from 'node:async_hooks';
import { type Context, type ContextManager, ROOT_CONTEXT } from '@opentelemetry/api';

/**
 * What travels with a unit of work through its callbacks and promises, in one AsyncLocalStorage:
 * the request id (log.ts), what the access line of an HTTP request is told (server/observe.ts),
 * and, while tracing is on, OpenTelemetry's context (tracing.ts registers `scopeContextManager`).
 * One store rather than one each: every AsyncLocalStorage in use adds its cost to every promise
 * and callback the process makes (measured: about 0.1 µs each, per store, on Node 20).
 */
export interface Scope {
  requestId?: string;
  /** The access line's notes of the HTTP request being served. */
  note?: Record<string, string>;
  /** OpenTelemetry's context (the active span). */
  trace?: Context;
}

const store = new AsyncLocalStorage<Scope>();

/** The current unit of work's scope, if any. */
export function currentScope(): Scope | undefined {
  return store.getStore();
}

/** Runs `fn` in the current scope with `changes` applied (a new scope object: the current one is left as it is). */
export function withScope<T>(changes: Scope, fn: () => T): T {
  return store.run({ ...store.getStore(), ...changes }, fn);
}

/**
 * OpenTelemetry's context kept in the kit's scope (see Scope), as its AsyncLocalStorage context
 * manager would keep it in a store of its own.
 */
export const scopeContextManager: ContextManager = {
  active: () => store.getStore()?.trace ?? ROOT_CONTEXT,
  with(context, fn, thisArg, ...args) {
    return store.run({ ...store.getStore(), trace: context }, () => fn.apply(thisArg, args));
  },
  bind(context, target) {
    if (typeof target !== 'function') return target;
    const manager = this;
    return function (this: unknown, ...args: unknown[]) {
      return manager.with(context, () => (target as (...a: unknown[]) => unknown).apply(this, args));
    } as typeof target;
  },
  enable() {
    return this;
  },
  disable() {
    return this;
  },
};
