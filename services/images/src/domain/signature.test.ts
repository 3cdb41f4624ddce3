import { describe, expect, it } from 'vitest';
import { canonicalJson, imageDefinition, signatureOf, type LayerInput } from './signature.js';

const os = (overrides: Partial<LayerInput> = {}): LayerInput => ({
  name: 'ubuntu',
  version: '22.04',
  values: 'ntp:\n  servers: [time.example.com]\n',
  ansibleRoles: ['hardening', 'falco', 'corp-ca'],
  ...overrides,
});
const sign = (layer: LayerInput, k8s = '1.30.4') => signatureOf(imageDefinition(layer, k8s));

describe('signatureOf', () => {
  it('should give the same signature to the same definition, every time', () => {
    expect(sign(os())).toBe(sign(os()));
    expect(sign(os())).toMatch(/^[0-9a-f]{16}$/);
  });

  it('should not depend on the order of object keys', () => {
    const a = imageDefinition(os(), '1.30.4');
    const b = { kubernetes: { version: '1.30.4' }, os: Object.fromEntries(Object.entries(a.os).reverse()) } as typeof a;
    expect(canonicalJson(b)).toBe(canonicalJson(a));
    expect(signatureOf(b)).toBe(signatureOf(a));
  });

  it('should treat absent and empty customisation alike', () => {
    expect(sign({ name: 'ubuntu', version: '22.04' })).toBe(
      sign({ name: 'ubuntu', version: '22.04', values: '', ansibleRoles: [], imageRef: null, skipK8sInstall: false }),
    );
    expect(sign(os({ values: 'a: 1\r\nb: 2\r\n' }))).toBe(sign(os({ values: 'a: 1\nb: 2' })));
  });

  it.each<[string, LayerInput, string]>([
    ['another OS version', os({ version: '24.04' }), '1.30.4'],
    ['another OS', os({ name: 'debian' }), '1.30.4'],
    ['another Kubernetes patch', os(), '1.30.5'],
    ['another Kubernetes minor', os(), '1.31.4'],
    ['the roles in another order', os({ ansibleRoles: ['falco', 'hardening', 'corp-ca'] }), '1.30.4'],
    ['one role fewer', os({ ansibleRoles: ['hardening', 'falco'] }), '1.30.4'],
    ['other values', os({ values: 'ntp:\n  servers: [pool.ntp.org]\n' }), '1.30.4'],
    ['no values', os({ values: null }), '1.30.4'],
    ['a bring-your-own base', os({ imageRef: 'ami-0abc' }), '1.30.4'],
    ['Kubernetes already on the base', os({ imageRef: 'ami-0abc', skipK8sInstall: true }), '1.30.4'],
  ])('should give %s another signature', (_what, layer, k8s) => {
    expect(sign(layer, k8s)).not.toBe(sign(os()));
  });
});
