import { describe, expect, it } from 'vitest';
import { reportService, type ServiceLike } from './services.js';

const svc = (
  type: string,
  ports: NonNullable<ServiceLike['spec']>['ports'],
  ingress?: { ip?: string; hostname?: string }[],
): ServiceLike => ({
  metadata: { namespace: 'monitoring', name: 'web' },
  spec: { type, ports },
  status: { loadBalancer: { ingress } },
});

describe('reportService', () => {
  it('should list each load balancer address on each port, https where the port says so', () => {
    const reported = reportService(
      svc(
        'LoadBalancer',
        [
          { name: 'http', port: 80 },
          { name: 'https', port: 443 },
          { name: 'metrics', port: 9090 },
        ],
        [{ ip: '203.0.113.10' }, { hostname: 'a1b2.elb.amazonaws.com' }],
      ),
      [],
    );
    expect(reported).toEqual({
      namespace: 'monitoring',
      name: 'web',
      type: 'LOAD_BALANCER',
      urls: [
        'http://203.0.113.10/',
        'https://203.0.113.10/',
        'http://203.0.113.10:9090/',
        'http://a1b2.elb.amazonaws.com/',
        'https://a1b2.elb.amazonaws.com/',
        'http://a1b2.elb.amazonaws.com:9090/',
      ],
    });
  });

  it('should report a pending load balancer without URLs', () => {
    expect(reportService(svc('LoadBalancer', [{ port: 80 }]), ['10.0.0.1'])?.urls).toEqual([]);
  });

  it('should list node addresses on the node ports of a NodePort service, skipping UDP', () => {
    const reported = reportService(
      svc('NodePort', [
        { name: 'web', port: 443, nodePort: 30443, appProtocol: 'https' },
        { port: 53, nodePort: 30053, protocol: 'UDP' },
      ]),
      ['10.0.1.5', 'fd00::5', '10.0.1.6', '10.0.1.7'],
    );
    expect(reported).toMatchObject({
      type: 'NODE_PORT',
      urls: ['https://10.0.1.5:30443/', 'https://[fd00::5]:30443/', 'https://10.0.1.6:30443/'],
    });
  });

  it('should ignore ClusterIP and ExternalName services', () => {
    expect(reportService(svc('ClusterIP', [{ port: 80 }]), [])).toBeNull();
    expect(reportService(svc('ExternalName', []), [])).toBeNull();
  });
});
