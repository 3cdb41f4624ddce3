import { describe, expect, it } from 'vitest';
import { hasFilterWildcard } from './ec2.js';

describe('hasFilterWildcard', () => {
  it.each([
    ['cluster-1', false],
    ['clu_01HZX', false],
    ['a*', true],
    ['a?b', true],
    ['a\\b', true],
  ])('%s: %s', (value, expected) => {
    expect(hasFilterWildcard(value)).toBe(expected);
  });
});
