import { describe, expect, it } from 'vitest';
import { deliveryBody, logBundleEvent } from './events.js';

describe('webhook events', () => {
  it("should tell of a READY log bundle without its download link, a bearer link a delivery's log would keep", () => {
    const origin = { stream: 'LOG_BUNDLES', seq: 7, time: new Date('2026-01-01T00:00:00.000Z') };
    const bundle = {
      id: 'lb_1',
      tenantId: 't1',
      projectId: 'p1',
      clusterId: 'cls_1',
      status: 'READY' as const,
      message: null,
      fileName: 'cls_1-logs.zip',
      sizeBytes: 1234,
      downloadUrl: 'https://fleet.example.com/logs/lb_1?token=secret',
      requestedAt: '2026-01-01T00:00:00.000Z',
      readyAt: '2026-01-01T00:01:00.000Z',
    };
    const event = logBundleEvent(bundle, origin)!;
    const body = JSON.parse(deliveryBody(event, 'p1'));
    expect(body).toMatchObject({
      type: 'LOG_BUNDLE_READY',
      data: { projectId: 'p1', clusterId: 'cls_1', logBundle: { id: 'lb_1', status: 'READY', sizeBytes: 1234 } },
    });
    expect(JSON.stringify(body)).not.toContain('secret');
    expect(body.data.logBundle).not.toHaveProperty('downloadUrl');
    expect(logBundleEvent({ ...bundle, status: 'COLLECTING' as const }, origin)).toBeNull();
  });
});
