import { describe, expect, it } from 'vitest';
import type { NodePool } from './cluster.js';
import { planPool, wantedIntents, type MachineIntent, type ObservedMachine } from './machines.js';

let serial = 0;
const pool = (overrides: Partial<NodePool> = {}): NodePool => ({
  name: 'workers',
  role: 'WORKER',
  count: 2,
  instanceType: 'm5.large',
  availabilityZones: ['z-a', 'z-b'],
  ...overrides,
});
const machine = (overrides: Partial<ObservedMachine> = {}): ObservedMachine => {
  serial++;
  return {
    id: `i-${serial}`,
    name: `workers-${serial}`,
    pool: 'workers',
    zone: 'z-a',
    instanceType: 'm5.large',
    imageId: 'img-1',
    state: 'running',
    launchedAt: `2026-01-01T00:00:${String(serial).padStart(2, '0')}Z`,
    ...overrides,
  };
};
const intent = (overrides: Partial<MachineIntent> = {}): MachineIntent => ({
  token: 't',
  name: 'n',
  pool: 'workers',
  role: 'WORKER',
  zone: 'z-a',
  instanceType: 'm5.large',
  imageId: 'img-1',
  ...overrides,
});

describe('planPool', () => {
  it.each([
    [
      'an empty pool scales up across zones',
      pool(),
      [],
      [],
      { kind: 'act', create: [{ zone: 'z-a' }, { zone: 'z-b' }], delete: [] },
    ],
    ['a pool at its count is done', pool(), [machine(), machine({ zone: 'z-b' })], [], { kind: 'done' }],
    ['a pool scaled to zero with no machines is done', pool({ count: 0 }), [], [], { kind: 'done' }],
    [
      'pending machines are waited for',
      pool(),
      [machine({ state: 'pending' }), machine({ zone: 'z-b' })],
      [],
      { kind: 'wait' },
    ],
    ['intents already made count as machines', pool(), [machine()], [intent({ zone: 'z-b' })], { kind: 'wait' }],
    [
      'a scale-up adds only the missing machines, in the emptiest zone',
      pool({ count: 3 }),
      [machine(), machine({ zone: 'z-b' })],
      [],
      { kind: 'act', create: [{ zone: 'z-a' }], delete: [] },
    ],
  ] as const)('%s', (_name, p, ms, is, expected) => {
    expect(planPool(p, 'img-1', ms, is)).toMatchObject(expected);
  });

  it('should scale down by removing the newest machine of the fullest zone', () => {
    const a1 = machine();
    const a2 = machine();
    const b1 = machine({ zone: 'z-b' });
    const plan = planPool(pool(), 'img-1', [a1, a2, b1], []);
    expect(plan).toMatchObject({ kind: 'act', create: [], delete: [a2] });
  });

  it('should scale down pending machines first', () => {
    const pending = machine({ state: 'pending', zone: 'z-b' });
    expect(planPool(pool(), 'img-1', [machine(), machine({ zone: 'z-b' }), pending], [])).toMatchObject({
      delete: [pending],
    });
  });

  it.each([
    ['an instance type change', { instanceType: 'm5.xlarge' }, 'img-1'],
    ['an image change (profile update)', {}, 'img-2'],
  ])('should roll %s one machine at a time: surge, wait, remove', (_name, change, image) => {
    const p = pool({ count: 2, ...change });
    const old1 = machine();
    const old2 = machine({ zone: 'z-b' });
    // 1. surge one up-to-date machine
    const surge = planPool(p, image, [old1, old2], []);
    expect(surge).toMatchObject({ kind: 'act', create: [{ zone: 'z-a' }], delete: [] });
    // 2. wait while it boots
    const fresh = machine({ state: 'pending', instanceType: p.instanceType, imageId: image });
    expect(planPool(p, image, [old1, old2, fresh], []).kind).toBe('wait');
    // 3. once it runs, remove the oldest outdated machine
    const running = { ...fresh, state: 'running' as const };
    expect(planPool(p, image, [old1, old2, running], [])).toMatchObject({ kind: 'act', create: [], delete: [old1] });
    // 4. then surge again, and so on until none is outdated
    expect(planPool(p, image, [old2, running], [])).toMatchObject({
      kind: 'act',
      create: [{ zone: 'z-b' }],
      delete: [],
    });
    const second = machine({ zone: 'z-b', instanceType: p.instanceType, imageId: image });
    expect(planPool(p, image, [old2, running, second], [])).toMatchObject({ delete: [old2] });
    expect(planPool(p, image, [running, second], [])).toEqual({ kind: 'done' });
  });

  it('should rebalance onto an added zone without changing the count', () => {
    const p = pool({ count: 2, availabilityZones: ['z-a', 'z-b'] });
    const a1 = machine();
    const a2 = machine();
    const first = planPool(p, 'img-1', [a1, a2], []);
    expect(first).toMatchObject({ kind: 'act', create: [{ zone: 'z-b' }], delete: [] });
    const b1 = machine({ zone: 'z-b' });
    expect(planPool(p, 'img-1', [a1, a2, b1], [])).toMatchObject({ kind: 'act', delete: [a2] });
    expect(planPool(p, 'img-1', [a1, b1], [])).toEqual({ kind: 'done' });
  });

  it('should remove machines in a zone the pool no longer uses, and failed machines', () => {
    const p = pool({ count: 1, availabilityZones: ['z-b'] });
    const failed = machine({ zone: 'z-b', state: 'failed' });
    expect(planPool(p, 'img-1', [failed], [])).toMatchObject({ kind: 'act', delete: [failed] });
    const stray = machine({ zone: 'z-a' });
    expect(planPool(p, 'img-1', [stray], [])).toMatchObject({ kind: 'act', create: [{ zone: 'z-b' }] });
  });
});

describe('planPool with the first control-plane node kept (the API endpoint)', () => {
  const cp = pool({ name: 'control-plane', role: 'CONTROL_PLANE', count: 1, availabilityZones: ['z-a'] });
  const node = (overrides: Partial<ObservedMachine> = {}) => machine({ pool: 'control-plane', ...overrides });

  it('should neither replace nor surge past an outdated first node alone', () => {
    const first = node({ instanceType: 'm5.xlarge', imageId: 'img-0' });
    expect(planPool(cp, 'img-1', [first], [], first.name)).toEqual({ kind: 'done' });
  });

  it('should replace the other outdated nodes, never the first', () => {
    const first = node({ imageId: 'img-0' });
    const second = node({ imageId: 'img-0' });
    const third = node({ imageId: 'img-1' });
    const fourth = node({ imageId: 'img-1' });
    const all = [first, second, third, fourth];
    expect(planPool({ ...cp, count: 3 }, 'img-1', all, [], first.name)).toMatchObject({
      kind: 'act',
      create: [],
      delete: [second],
    });
    // Without it kept, the oldest (the first node) would go.
    expect(planPool({ ...cp, count: 3 }, 'img-1', all, [])).toMatchObject({ delete: [first] });
  });

  it('should not pick the first node on a scale-down', () => {
    const first = node();
    const later = node();
    const plan = planPool({ ...cp, count: 1 }, 'img-1', [first, later], [], first.name);
    expect(plan).toMatchObject({ kind: 'act', delete: [later] });
  });
});

describe('planPool for a control plane', () => {
  const cp = pool({ name: 'control-plane', role: 'CONTROL_PLANE', count: 3, availabilityZones: ['z-a', 'z-b', 'z-c'] });
  const node = (overrides: Partial<ObservedMachine> = {}) => machine({ pool: 'control-plane', ...overrides });

  it('should add its nodes one at a time, each once the one before runs', () => {
    const first = node();
    expect(planPool(cp, 'img-1', [first], [])).toMatchObject({ kind: 'act', create: [{ zone: 'z-b' }], delete: [] });
    expect(planPool(cp, 'img-1', [first], [intent({ pool: 'control-plane', zone: 'z-b' })])).toMatchObject({
      kind: 'wait',
    });
    expect(planPool(cp, 'img-1', [first, node({ zone: 'z-b', state: 'pending' })], [])).toMatchObject({ kind: 'wait' });
    expect(planPool(cp, 'img-1', [first, node({ zone: 'z-b' })], [])).toMatchObject({
      kind: 'act',
      create: [{ zone: 'z-c' }],
    });
  });
});

describe('wantedIntents', () => {
  it("should keep the first control-plane node's intent whatever the definition became", () => {
    const cp = pool({ name: 'control-plane', role: 'CONTROL_PLANE', count: 1, availabilityZones: ['z-a'] });
    const first = intent({ name: 'control-plane-1', pool: 'control-plane', role: 'CONTROL_PLANE', generation: 1 });
    // Generation 2 resized the control plane: an intent of another type, yet the first node's.
    expect(wantedIntents([{ ...cp, instanceType: 'm5.xlarge' }], 'img-1', [], [first], 2, first.name)).toEqual([first]);
    expect(wantedIntents([{ ...cp, instanceType: 'm5.xlarge' }], 'img-1', [], [first], 2)).toEqual([]);
  });
});
