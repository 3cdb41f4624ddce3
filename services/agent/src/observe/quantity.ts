/**
 * Kubernetes resource quantities (`resource.Quantity`): `250m`, `1.5`, `128Mi`, `1G`, `2e3`.
 * Binary suffixes (Ki, Mi, Gi, Ti, Pi, Ei) are powers of 1024, decimal ones (n, u, m, k, M, G,
 * T, P, E) powers of 1000.
 */
const SUFFIXES: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;

export class QuantityError extends Error {
  constructor(readonly quantity: string) {
    super(`not a Kubernetes quantity: ${JSON.stringify(quantity).slice(0, 64)}`);
    this.name = 'QuantityError';
  }
}

/** The value of a quantity as a plain number (cores for CPU, bytes for memory). @throws QuantityError */
export function parseQuantity(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const match = QUANTITY.exec(quantity.trim());
  if (!match) throw new QuantityError(quantity);
  const [, number, exponent, suffix = ''] = match;
  const value = Number(number) * (exponent ? 10 ** Number(exponent.slice(1)) : SUFFIXES[suffix]!);
  if (!Number.isFinite(value)) throw new QuantityError(quantity);
  return value;
}

/** A quantity of a resource list, or 0 when absent. */
export function quantityOf(list: Record<string, string | number> | undefined | null, resource: string): number {
  const value = list?.[resource];
  return value === undefined ? 0 : parseQuantity(value);
}
