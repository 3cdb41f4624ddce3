import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Namespace, Secret, ServiceAccount } from 'kubernetes-models/v1';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { agentManifest, agentObjects } from './agent-manifest.js';
import { KUBEADM_API } from './kubeadm-api.js';
import {
  kubeadmApiVersion,
  DEFAULT_NETWORKING,
  UnsupportedKubernetesVersionError,
  type KubeadmNode,
} from './kubeadm.js';
import { caCertHash, generateClusterPki } from './pki.js';
import { BOOTSTRAP_PATHS, userData, type NodeBootstrap } from './user-data.js';

/**
 * Bootstrap artifacts, checked with the tools that will read them: cloud-init's own validator
 * (Debian's cloud-init package: `cloud-init schema --config-file`), strict schemas of the kubeadm
 * API types of each version (kubeadm-api.ts), and the Kubernetes API schemas (kubernetes-models).
 * A real kubeadm run needs a real machine: not verified here.
 */
describe('node bootstrap', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await generateClusterPki();
  const manifest = agentManifest({
    clusterId: 'cls_1',
    tenantId: 't1',
    natsUrl: 'tls://nats.example.com:4222',
    natsCredentials: '-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n',
    image: 'registry.example.com/fleetgraph/agent:0.1.0',
  });
  const node = (kubernetesVersion: string, nodeName: string): KubeadmNode => ({
    kubernetesVersion,
    clusterName: 'demo',
    controlPlaneEndpoint: '10.0.1.10:6443',
    nodeName,
    labels: { 'fleetgraph.io/pool': 'workers' },
    bootstrapToken: { token: 'abcdef.0123456789abcdef', ttlSeconds: 3600 },
    caCertHash: caCertHash(pki.ca.cert),
    ...DEFAULT_NETWORKING,
  });
  const proxy = {
    httpProxy: 'http://proxy.internal:3128',
    httpsProxy: 'http://proxy.internal:3128',
    noProxy: ['10.0.0.0/8', '.cluster.local'],
  };

  const cases: [string, NodeBootstrap][] = [];
  for (const version of ['1.30.4', '1.31.2']) {
    for (const kubernetesPreinstalled of [false, true]) {
      const common = { kubernetesPreinstalled, proxy: kubernetesPreinstalled ? null : proxy };
      const image = kubernetesPreinstalled ? 'Kubernetes in the image' : 'Kubernetes installed';
      cases.push([
        `first control plane, ${version}, ${image}`,
        { kind: 'init', kubeadm: node(version, 'cp-a1b2c'), pki, agentManifest: manifest, ...common },
      ]);
      cases.push([
        `further control plane, ${version}, ${image}`,
        { kind: 'join-control-plane', kubeadm: node(version, 'cp-d3e4f'), pki, ...common },
      ]);
      cases.push([
        `worker, ${version}, ${image}`,
        { kind: 'join-worker', kubeadm: node(version, 'workers-g5h6i'), ...common },
      ]);
    }
  }

  const cloudInitValidates = (text: string, name: string) => {
    const path = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
    writeFileSync(path, text);
    const run = spawnSync('cloud-init', ['schema', '--config-file', path], { encoding: 'utf8' });
    if (run.error)
      throw new Error(
        `cloud-init is needed for this test (apt-get install -y cloud-init; bash deploy/setup.sh --test does it): ${run.error.message}`,
      );
    return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
  };
  const filesOf = (text: string) =>
    new Map(
      (parse(text) as { write_files: { path: string; content: string; permissions: string }[] }).write_files.map(
        (f) => [f.path, f],
      ),
    );

  it.each(cases)('should write user data that cloud-init validates: %s', (name, bootstrap) => {
    const text = userData(bootstrap);
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const result = cloudInitValidates(text, name);
    expect(result.output).toContain('Valid cloud-config');
    expect(result.ok).toBe(true);
  });

  it.each(cases)(
    'should write kubeadm configuration of the right API version that its types accept: %s',
    (_name, bootstrap) => {
      const apiVersion = kubeadmApiVersion(bootstrap.kubeadm.kubernetesVersion);
      const config = filesOf(userData(bootstrap)).get(BOOTSTRAP_PATHS.kubeadmConfig)!;
      expect(config.permissions).toBe('0600');
      const docs = parseAllDocuments(config.content).map(
        (d) => d.toJS() as { apiVersion: string; kind: keyof (typeof KUBEADM_API)[typeof apiVersion] },
      );
      expect(docs.map((d) => d.kind)).toEqual(
        bootstrap.kind === 'init' ? ['InitConfiguration', 'ClusterConfiguration'] : ['JoinConfiguration'],
      );
      for (const doc of docs) {
        expect(doc.apiVersion).toBe(apiVersion);
        const checked = KUBEADM_API[apiVersion][doc.kind].safeParse(doc);
        expect(checked.success ? [] : checked.error.issues).toEqual([]);
      }
    },
  );

  it("should refuse the other version's spelling of the same configuration", () => {
    const v3 = filesOf(userData(cases[2]![1])).get(BOOTSTRAP_PATHS.kubeadmConfig)!.content;
    const doc = { ...(parse(v3) as object), apiVersion: 'kubeadm.k8s.io/v1beta4' };
    expect(KUBEADM_API['kubeadm.k8s.io/v1beta4'].JoinConfiguration.safeParse(doc).success).toBe(false);
  });

  it('should give a worker no key and no long-lived secret, only the bootstrap token and the CA hash', () => {
    for (const [, bootstrap] of cases.filter(([, b]) => b.kind === 'join-worker')) {
      const text = userData(bootstrap);
      expect(text).not.toMatch(/PRIVATE KEY|NATS USER JWT|NATS_CREDENTIALS/);
      expect(text).toContain(caCertHash(pki.ca.cert));
      expect([...filesOf(text).keys()].some((path) => path.startsWith('/etc/kubernetes/pki'))).toBe(false);
    }
  });

  it('should give control-plane nodes the cluster CA files, keys readable by root only, and the agent to the first only', () => {
    for (const [, bootstrap] of cases.filter(([, b]) => b.kind !== 'join-worker')) {
      const files = filesOf(userData(bootstrap));
      expect(files.get('/etc/kubernetes/pki/ca.crt')?.content).toBe(pki.ca.cert);
      for (const key of ['ca.key', 'etcd/ca.key', 'front-proxy-ca.key', 'sa.key'])
        expect(files.get(`/etc/kubernetes/pki/${key}`)?.permissions).toBe('0600');
      expect(files.has(BOOTSTRAP_PATHS.agentManifest)).toBe(bootstrap.kind === 'init');
    }
  });

  it('should install Kubernetes only on images without it, at the cluster version', () => {
    const [installed, preinstalled] = [cases[0]![1], cases[3]![1]];
    const script = filesOf(userData(installed)).get(BOOTSTRAP_PATHS.installKubernetes)!.content;
    expect(script).toContain('kubeadm=1.30.4-*');
    expect(script).toContain('pkgs.k8s.io/core:/stable:/v1.30/deb/');
    expect(filesOf(userData(preinstalled)).has(BOOTSTRAP_PATHS.installKubernetes)).toBe(false);
    const bash = spawnSync('bash', ['-n'], { input: script });
    expect(bash.status).toBe(0);
  });

  it('should refuse Kubernetes versions kubeadm configuration is not written for', () => {
    expect(() => kubeadmApiVersion('1.21.0')).toThrow(UnsupportedKubernetesVersionError);
    expect(() => kubeadmApiVersion('latest')).toThrow(UnsupportedKubernetesVersionError);
    expect(kubeadmApiVersion('v1.33.0')).toBe('kubeadm.k8s.io/v1beta4');
  });

  it('should make an agent manifest whose every object the Kubernetes API schemas accept', () => {
    const kinds = {
      Namespace,
      ServiceAccount,
      ClusterRole,
      ClusterRoleBinding,
      Role,
      RoleBinding,
      Secret,
      Deployment,
    } as const;
    const objects = agentObjects({
      clusterId: 'cls_1',
      tenantId: 't1',
      natsUrl: 'nats://127.0.0.1:4222',
      natsCredentials: null,
      image: 'fleetgraph/agent:dev',
    });
    expect(objects.map((o) => o.kind)).toEqual([
      'Namespace',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'ClusterRoleBinding',
      'ClusterRoleBinding',
      'Secret',
      'Deployment',
    ]);
    for (const object of objects) {
      const Model = kinds[object.kind as keyof typeof kinds];
      expect(() => new Model(object as never).validate()).not.toThrow();
    }
    const docs = parseAllDocuments(manifest).map((d) => d.toJS());
    expect(docs).toHaveLength(10);
    // The role reads, never writes.
    const role = objects.find((o) => o.kind === 'ClusterRole') as { rules: { verbs: string[] }[] };
    expect(new Set(role.rules.flatMap((r) => r.verbs))).toEqual(new Set(['get', 'list', 'watch']));
    // It writes one object: its own Secret.
    const own = objects.find((o) => o.kind === 'Role') as {
      rules: { resources: string[]; resourceNames: string[]; verbs: string[] }[];
    };
    expect(own.rules).toEqual([
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['fleetgraph-agent'], verbs: ['get', 'patch'] },
    ]);
  });

  it('should be checked by validators that refuse what is wrong', () => {
    expect(cloudInitValidates('#cloud-config\nwrite_files: 3\n', 'bad').ok).toBe(false);
    expect(() => new Deployment({ metadata: { name: 'x' }, spec: { replicas: 'one' } } as never).validate()).toThrow();
    expect(execFileSync('cloud-init', ['--version'], { encoding: 'utf8' })).toMatch(/\d+\.\d+/);
  });
});
