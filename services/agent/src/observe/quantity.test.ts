import { describe, expect, it } from 'vitest';
import { parseQuantity, QuantityError } from './quantity.js';

describe('parseQuantity', () => {
  it.each([
    ['250m', 0.25],
    ['1', 1],
    ['1.5', 1.5],
    ['.5', 0.5],
    ['100n', 100e-9],
    ['128Mi', 128 * 2 ** 20],
    ['16Gi', 16 * 2 ** 30],
    ['3970088Ki', 3970088 * 1024],
    ['1G', 1e9],
    ['500k', 500e3],
    ['2e3', 2000],
    ['1E6', 1e6],
    [4, 4],
  ])('should read %s as %d', (quantity, expected) => {
    expect(parseQuantity(quantity)).toBeCloseTo(expected, 12);
  });

  it.each(['', 'Mi', '1 Gi', '1Xi', '--1', 'one'])('should refuse %j', (quantity) => {
    expect(() => parseQuantity(quantity)).toThrow(QuantityError);
  });
});
