import type { CloudProvider } from './provider.js';

/** Every operation of a provider (a compile error when the interface gains one not listed). */
const OPERATIONS: Record<Exclude<keyof CloudProvider, 'type' | 'close'>, true> = {
  regions: true,
  instanceTypes: true,
  quota: true,
  ensureNetwork: true,
  deleteNetwork: true,
  describeImage: true,
  findImages: true,
  copyImage: true,
  createImageFromMachine: true,
  deleteImage: true,
  createMachine: true,
  describeMachines: true,
  describeMachine: true,
  deleteMachine: true,
};

/** A provider operation's name. */
export type ProviderOperation = keyof typeof OPERATIONS;

/**
 * The provider with every operation run through `around` (which calls `call` to run it): what
 * the metrics and the traces of cloud calls wrap each operation with.
 */
export function wrapProvider(
  provider: CloudProvider,
  around: (operation: ProviderOperation, args: unknown[], call: () => Promise<unknown>) => Promise<unknown>,
): CloudProvider {
  const wrapped: Record<string, unknown> = { type: provider.type, close: () => provider.close() };
  for (const operation of Object.keys(OPERATIONS) as ProviderOperation[]) {
    const method = (provider[operation] as (...args: unknown[]) => Promise<unknown>).bind(provider);
    wrapped[operation] = (...args: unknown[]) => around(operation, args, () => method(...args));
  }
  return wrapped as unknown as CloudProvider;
}
