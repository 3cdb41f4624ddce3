import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { caCertHash, generateClusterPki, issueClientCertificate } from './pki.js';
import { createSealer, SealError } from './sealed.js';

/** The PKI checked with OpenSSL, an implementation of X.509 independent of the one that made it. */
describe('cluster PKI', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pki-test-'));
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };
  const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });
  const pki = await generateClusterPki();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['ca', pki.ca, 'kubernetes'],
    ['etcd CA', pki.etcdCa, 'etcd-ca'],
    ['front-proxy CA', pki.frontProxyCa, 'front-proxy-ca'],
  ])('should make the %s a self-signed CA whose key matches it', (_name, pair, cn) => {
    const cert = file(`${cn}.crt`, pair.cert);
    const text = openssl('x509', '-in', cert, '-noout', '-text');
    expect(text).toContain(`Subject: CN = ${cn}`);
    expect(text).toMatch(/CA:TRUE/);
    expect(text).toMatch(/Certificate Sign/);
    expect(openssl('verify', '-CAfile', cert, cert).trim()).toBe(`${cert}: OK`);
    const certKey = openssl('x509', '-in', cert, '-noout', '-pubkey');
    const keyPub = openssl('pkey', '-in', file(`${cn}.key`, pair.key), '-pubout');
    expect(keyPub).toBe(certKey);
  });

  it('should make a service-account key pair whose halves match', () => {
    const pub = openssl('pkey', '-in', file('sa.key', pki.serviceAccount.key), '-pubout');
    expect(pub).toBe(pki.serviceAccount.pub);
  });

  it('should give the CA hash kubeadm computes: sha256 of the DER public key', () => {
    const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], {
      input: openssl('x509', '-in', file('ca.crt', pki.ca.cert), '-noout', '-pubkey'),
    });
    const expected = execFileSync('openssl', ['dgst', '-sha256', '-hex'], { input: der, encoding: 'utf8' })
      .trim()
      .split(' ')
      .at(-1);
    expect(caCertHash(pki.ca.cert)).toBe(`sha256:${expected}`);
  });

  it('should sign a client certificate that verifies against the cluster CA', async () => {
    const now = new Date();
    const client = await issueClientCertificate(
      pki.ca,
      { commonName: 'alice@example.com', organizations: ['fleetgraph:editor'], validityMs: 8 * 3600_000 },
      now,
    );
    const cert = file('client.crt', client.cert);
    expect(openssl('verify', '-CAfile', file('ca.crt', pki.ca.cert), cert).trim()).toBe(`${cert}: OK`);
  });

  it('should make certificates that the CA of another cluster refuses', async () => {
    const other = await generateClusterPki();
    const client = await issueClientCertificate(other.ca, {
      commonName: 'mallory',
      organizations: [],
      validityMs: 60_000,
    });
    expect(() =>
      execFileSync('openssl', ['verify', '-CAfile', file('ca.crt', pki.ca.cert), file('foreign.crt', client.cert)], {
        stdio: 'pipe',
      }),
    ).toThrow();
  });

  it('should name the user in CN and the role in O, for client authentication only, with the asked validity', async () => {
    const now = new Date('2026-12-02T10:00:00Z');
    const client = await issueClientCertificate(
      pki.ca,
      { commonName: 'bob, the "admin"', organizations: ['fleetgraph:admin'], validityMs: 3600_000 },
      now,
    );
    const text = openssl('x509', '-in', file('bob.crt', client.cert), '-noout', '-text', '-nameopt', 'RFC2253');
    expect(text).toMatch(
      /Subject: CN=bob\\, the \\"admin\\",O=fleetgraph:admin|Subject: O=fleetgraph:admin,CN=bob\\, the \\"admin\\"/,
    );
    expect(text).toContain('TLS Web Client Authentication');
    expect(text).toMatch(/CA:FALSE/);
    expect(client.notAfter.toISOString()).toBe('2026-12-02T11:00:00.000Z');
    expect(text).toContain('Not After : Dec  2 11:00:00 2026 GMT');
  });
});

describe('sealed secrets', () => {
  const sealer = createSealer('a development key of at least thirty-two characters');

  it('should open what it sealed for the same owner only', () => {
    const sealed = sealer.seal('-----BEGIN PRIVATE KEY-----', 'cls_1');
    expect(sealed).not.toContain('PRIVATE');
    expect(sealer.open(sealed, 'cls_1')).toBe('-----BEGIN PRIVATE KEY-----');
    expect(() => sealer.open(sealed, 'cls_2')).toThrow(SealError);
    expect(() => createSealer('another key of at least thirty-two characters!').open(sealed, 'cls_1')).toThrow(
      SealError,
    );
  });

  it('should refuse altered and malformed values, and short keys', () => {
    const sealed = sealer.seal('secret', 'cls_1');
    const altered = `${sealed.slice(0, -2)}${sealed.endsWith('AA') ? 'AB' : 'AA'}`;
    for (const bad of [altered, 'v1.x.y', 'v2.aaa.bbb', 'garbage', ''])
      expect(() => sealer.open(bad, 'cls_1')).toThrow(SealError);
    expect(() => createSealer('short')).toThrow(RangeError);
  });
});
