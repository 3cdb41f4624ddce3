import { describe, expect, it } from 'vitest';
import { parseCondition } from './condition.js';

describe('complete conditions', () => {
  it.each([
    ['status in [READY, FAILED]', { status: 'READY' }, true],
    ['status in [READY, FAILED]', { status: 'COLLECTING' }, false],
    ['status in [READY, FAILED]', {}, false],
    ['bundle.status == READY', { bundle: { status: 'READY' } }, true],
    ['bundle.status == READY', { bundle: null }, false],
    ['done == true', { done: true }, true],
    ['progress != 100', { progress: 100 }, false],
    ['name in ["a b", "c"]', { name: 'a b' }, true],
    ['error == null', { error: null }, true],
  ])('should evaluate %s on %j as %s', (source, payload, expected) => {
    expect(parseCondition(source)(payload)).toBe(expected);
  });

  it.each([
    ['', 'a condition starts with a field path'],
    ['status', 'expected "in", "==" or "!=" after the field path'],
    ['status in READY', '"in" takes a list: in [A, B]'],
    ['status in []', 'the list is empty'],
    ['status in [A B]', 'list values are separated by commas'],
    ['status == A B', '"==" takes one value'],
    ['status ~ A', 'unexpected "~ A"'],
  ])('should refuse %j: %s', (source, message) => {
    expect(() => parseCondition(source)).toThrow(message);
  });
});
