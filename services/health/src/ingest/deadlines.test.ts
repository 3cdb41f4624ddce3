import { describe, expect, it } from 'vitest';
import { Deadlines } from './deadlines.js';

describe('Deadlines', () => {
  it('should return each id once when its deadline passes', () => {
    const d = new Deadlines(1000);
    d.set('a', 5_000);
    d.set('b', 2_500);
    d.set('c', 9_000);
    expect(d.take(1_000)).toEqual([]);
    expect(d.take(3_000)).toEqual(['b']);
    expect(d.take(3_500)).toEqual([]);
    expect(d.take(8_000)).toEqual(['a']);
    expect(d.size).toBe(1);
    expect(d.take(60_000)).toEqual(['c']);
    expect(d.size).toBe(0);
  });

  it('should move and cancel deadlines', () => {
    const d = new Deadlines(100);
    d.set('a', 1_000);
    d.take(0);
    d.set('a', 5_000);
    expect(d.take(2_000)).toEqual([]);
    d.set('a', null);
    expect(d.take(10_000)).toEqual([]);
    d.set('b', 20_000);
    d.delete('b');
    expect(d.size).toBe(0);
  });

  it('should fire a deadline moved back and forth once, at its last time', () => {
    const d = new Deadlines(1000);
    for (const at of [2_000, 5_000, 3_000, 5_000]) d.set('a', at);
    d.set('b', 3_000);
    d.delete('b');
    d.set('b', 4_000);
    d.set('c', 3_000);
    d.set('c', null);
    expect(d.size).toBe(2);
    expect(d.take(2_500)).toEqual([]);
    expect(d.take(3_500)).toEqual([]);
    expect(d.take(4_500)).toEqual(['b']);
    expect(d.take(6_000)).toEqual(['a']);
    expect(d.size).toBe(0);
    d.set('a', 8_000);
    expect(d.take(60_000)).toEqual(['a']);
    expect(d.size).toBe(0);
  });

  it('should never fire before the deadline, and fire a past one at the next take', () => {
    const d = new Deadlines(1000);
    d.take(10_000);
    d.set('late', 10_001);
    expect(d.take(10_999)).toEqual([]);
    expect(d.take(11_000)).toEqual(['late']);
    d.set('past', 3_000);
    expect(d.take(11_500)).toEqual(['past']);
  });

  it('should skip a long pause without walking every slot', () => {
    const d = new Deadlines(1);
    d.take(0);
    d.set('a', 5);
    d.set('b', 1e12);
    expect(d.take(1e11)).toEqual(['a']);
    expect(d.take(1e12)).toEqual(['b']);
  });
});
