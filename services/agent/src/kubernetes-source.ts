import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { ConfigError } from '@fleetgraph/kit/core';
import { AGENT_SECRET_KEYS, type PackLayerMessage } from '@fleetgraph/schema';
import type { Observation, ObservationSource } from './observe/observation.js';
import {
  WatchingKubernetesObservations,
  type WatchingKubernetesObservationsOptions,
} from './observe/kubernetes-watch.js';
import type { AgentSource, InstalledPack } from './source.js';

/** Where Kubernetes mounts a pod's service account (its token, CA and namespace). */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Whether this process runs in a Kubernetes pod with a service account. */
export function inCluster(env: NodeJS.ProcessEnv = process.env): boolean {
  return (
    !!env.KUBERNETES_SERVICE_HOST && !!env.KUBERNETES_SERVICE_PORT && existsSync(join(SERVICE_ACCOUNT_DIR, 'token'))
  );
}

/**
 * The Kubernetes configuration of the agent: in a pod, its service account
 * (`KubeConfig.loadFromCluster`, the token re-read as Kubernetes rotates it); outside, the
 * kubeconfig of `KUBECONFIG` or `~/.kube/config` (`loadFromDefault`), its current context.
 * @throws ConfigError when there is neither
 */
export function loadKubeConfig(env: NodeJS.ProcessEnv = process.env): { kubeConfig: KubeConfig; inCluster: boolean } {
  const config = new KubeConfig();
  if (inCluster(env)) {
    config.loadFromCluster();
    return { kubeConfig: config, inCluster: true };
  }
  const files = env.KUBECONFIG
    ? env.KUBECONFIG.split(process.platform === 'win32' ? ';' : ':').filter(Boolean)
    : [join(homedir(), '.kube', 'config')];
  if (!files.some((file) => existsSync(file))) {
    throw new ConfigError([
      'AGENT_SOURCE=kubernetes: not in a cluster, and no kubeconfig ' +
        `(${env.KUBECONFIG ? `KUBECONFIG=${env.KUBECONFIG}` : '~/.kube/config'}) exists`,
    ]);
  }
  try {
    config.loadFromDefault();
  } catch (error) {
    throw new ConfigError([`AGENT_SOURCE=kubernetes: the kubeconfig does not load: ${(error as Error).message}`]);
  }
  if (!config.getCurrentCluster())
    throw new ConfigError([
      "AGENT_SOURCE=kubernetes: the kubeconfig's current context " +
        `(${config.getCurrentContext() || 'none'}) names no cluster`,
    ]);
  return { kubeConfig: config, inCluster: false };
}

/** The namespace of this pod (from its service account), or of the kubeconfig's current context. @default 'default' */
export function currentNamespace(config: KubeConfig): string {
  return config.getContextObject(config.getCurrentContext())?.namespace?.trim() || 'default';
}

/**
 * The agent's source in a real cluster: what it sees comes from the Kubernetes API, watched
 * (`WatchingKubernetesObservations`). Pack installs are not made by this agent yet: each one
 * asked for is answered as failed, saying so, rather than pretended installed.
 */
export class KubernetesSource implements AgentSource, ObservationSource {
  readonly kind = 'kubernetes' as const;
  readonly observations: WatchingKubernetesObservations;

  constructor(options: WatchingKubernetesObservationsOptions) {
    this.observations = new WatchingKubernetesObservations(options);
  }

  /** Starts the watches (the first observation waits for their lists). */
  start(): Promise<void> {
    return this.observations.start();
  }

  stop(): Promise<void> {
    return this.observations.stop();
  }

  observe(): Promise<Observation> {
    return this.observations.observe();
  }

  onChange(listener: () => void): () => void {
    return this.observations.onChange(listener);
  }

  async applyPacks(packs: readonly PackLayerMessage[]) {
    return {
      installed: [] as InstalledPack[],
      failed: packs.map((p) => ({
        name: p.name,
        version: p.version,
        message:
          'this agent does not install packs in a real cluster yet: ' + `install ${p.name} ${p.version} with its chart`,
      })),
    };
  }

  installedPacks(): InstalledPack[] {
    return [];
  }
}

/**
 * Writes renewed credentials back into the agent's Secret (a merge patch of its
 * `NATS_CREDENTIALS`), so that a restarted agent starts with them rather than with the boot
 * credentials, which may have expired. Needs `get` and `patch` on that Secret.
 */
export function keepCredentialsInSecret(
  config: KubeConfig,
  secret: { namespace: string; name: string },
): (creds: string) => Promise<void> {
  const core = config.makeApiClient(CoreV1Api);
  return async (creds) => {
    await core.patchNamespacedSecret(
      {
        name: secret.name,
        namespace: secret.namespace,
        body: { stringData: { [AGENT_SECRET_KEYS.natsCredentials]: creds } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  };
}
