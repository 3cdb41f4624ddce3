import { describe, expect, it } from 'vitest';
import { CloudError } from './errors.js';
import { ingressRules, planSubnets } from './network-plan.js';

describe('cluster network plan', () => {
  it('gives each zone a control-plane /24 and a worker /20 that do not overlap', () => {
    expect(planSubnets('10.0.0.0/16', ['a', 'b'], 'AWS')).toEqual([
      { role: 'CONTROL_PLANE', zone: 'a', cidr: '10.0.0.0/24' },
      { role: 'WORKER', zone: 'a', cidr: '10.0.64.0/20' },
      { role: 'CONTROL_PLANE', zone: 'b', cidr: '10.0.1.0/24' },
      { role: 'WORKER', zone: 'b', cidr: '10.0.80.0/20' },
    ]);
  });

  it('gives regional clouds one subnet per role', () => {
    expect(planSubnets('10.8.0.0/16', null, 'AZURE')).toEqual([
      { role: 'CONTROL_PLANE', zone: null, cidr: '10.8.0.0/24' },
      { role: 'WORKER', zone: null, cidr: '10.8.64.0/18' },
    ]);
  });

  it.each([['10.0.0.0/8'], ['10.0.1.0/16'], ['300.0.0.0/16'], ['nope']])(
    'refuses %s as INVALID_CONFIGURATION',
    (cidr) => {
      expect(() => planSubnets(cidr, ['a'], 'AWS')).toThrow(CloudError);
    },
  );

  it('opens the Kubernetes API on control-plane nodes only, and NodePorts only when asked', () => {
    const cp = ingressRules('CONTROL_PLANE', {});
    const workers = ingressRules('WORKER', {});
    expect(cp.filter((r) => 'cidr' in r.source)).toEqual([
      { description: 'Kubernetes API', protocol: 'tcp', fromPort: 6443, toPort: 6443, source: { cidr: '0.0.0.0/0' } },
    ]);
    expect(workers.filter((r) => 'cidr' in r.source)).toEqual([]);
    expect(
      ingressRules('WORKER', { nodePortAllowedCidrs: ['192.0.2.0/24'] }).filter((r) => 'cidr' in r.source),
    ).toEqual([
      {
        description: 'NodePort services',
        protocol: 'tcp',
        fromPort: 30000,
        toPort: 32767,
        source: { cidr: '192.0.2.0/24' },
      },
    ]);
  });
});
