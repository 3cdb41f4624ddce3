import { describe, expect, it } from 'vitest';
import {
  initialStatus,
  InvalidTransitionError,
  retryJob,
  transition,
  type BuildJob,
  type ImageEvent,
  type ImageStatus,
} from './image.js';

describe('image status transitions', () => {
  it.each<[ImageStatus, ImageEvent, ImageStatus]>([
    ['PENDING', { type: 'BUILD_STARTED' }, 'BUILDING'],
    ['PENDING', { type: 'COPY_STARTED' }, 'COPYING'],
    ['PENDING', { type: 'AVAILABLE' }, 'READY'],
    ['PENDING', { type: 'FAILED' }, 'FAILED'],
    ['BUILDING', { type: 'AVAILABLE' }, 'READY'],
    ['BUILDING', { type: 'FAILED' }, 'FAILED'],
    ['BUILDING', { type: 'BUILD_STARTED' }, 'BUILDING'],
    ['COPYING', { type: 'COPY_STARTED' }, 'COPYING'],
    ['COPYING', { type: 'AVAILABLE' }, 'READY'],
    ['COPYING', { type: 'FAILED' }, 'FAILED'],
    ['FAILED', { type: 'RETRY', kind: 'build' }, 'PENDING'],
    ['FAILED', { type: 'RETRY', kind: 'copy' }, 'COPYING'],
  ])('should go from %s on %o to %s', (from, event, to) => {
    expect(transition(from, event)).toBe(to);
  });

  it.each<[ImageStatus, ImageEvent]>([
    ['READY', { type: 'FAILED' }],
    ['READY', { type: 'BUILD_STARTED' }],
    ['READY', { type: 'RETRY', kind: 'build' }],
    ['FAILED', { type: 'AVAILABLE' }],
    ['FAILED', { type: 'BUILD_STARTED' }],
    ['PENDING', { type: 'RETRY', kind: 'build' }],
    ['BUILDING', { type: 'COPY_STARTED' }],
    ['COPYING', { type: 'BUILD_STARTED' }],
    ['COPYING', { type: 'RETRY', kind: 'copy' }],
  ])('should refuse to leave %s on %o', (from, event) => {
    expect(() => transition(from, event)).toThrow(InvalidTransitionError);
  });

  it.each([
    ['ready', 'READY'],
    ['copy', 'COPYING'],
    ['build', 'PENDING'],
  ] as const)('should start a %s image as %s', (work, status) => {
    expect(initialStatus(work)).toBe(status);
  });

  it('should restart a failed build from its first step with the next attempt', () => {
    const failed: BuildJob = {
      kind: 'build',
      step: 'cleanup',
      attempt: 2,
      base: { kind: 'catalogue', key: 'ubuntu-22.04-k8s-1.30' },
      installKubernetes: true,
      baseRequested: true,
      baseImageId: 'ami-1',
      builderMachineId: 'i-1',
      progress: 7,
      cloudImageId: 'ami-2',
      outcome: { status: 'FAILED', message: 'boom' },
      startedAt: '2026-01-01T00:00:00.000Z',
    };
    expect(retryJob(failed, new Date('2026-01-02T00:00:00.000Z'))).toEqual({
      ...failed,
      step: 'base',
      attempt: 3,
      baseRequested: false,
      baseImageId: null,
      builderMachineId: null,
      progress: 0,
      cloudImageId: null,
      outcome: null,
      startedAt: '2026-01-02T00:00:00.000Z',
    });
  });
});
