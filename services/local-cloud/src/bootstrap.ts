/**
 * How a machine of the local cloud boots: its user data read as cloud-init and kubeadm would
 * read it. A cluster's machine whose user data would not make it a node fails its boot, as a
 * real one would (stopped, its state reason saying why); the first control-plane node's user
 * data carries the cluster agent's manifest, whose Secret the simulated agent starts from.
 */
import { gunzipSync } from 'node:zlib';
import { AGENT_SECRET_KEYS, BOOTSTRAP_PATHS } from '@fleetgraph/schema';
import { parse, parseAllDocuments } from 'yaml';
import type { Tags } from './model.js';

/** Tags the platform puts on a cluster's machines (see @fleetgraph/clouds TagKeys and the clusters orchestrator). */
export const CLUSTER_TAGS = {
  cluster: 'fleetgraph:cluster',
  tenant: 'fleetgraph:tenant',
  pool: 'fleetgraph:pool',
  machine: 'fleetgraph:machine',
  role: 'fleetgraph:role',
  /** On an image builder (see @fleetgraph/images ImageTagKeys): a machine that is never a node. */
  imageId: 'fleetgraph:image-id',
} as const;

/**
 * The cluster and tenant a machine belongs to, from its tags; null for a machine outside
 * clusters (an image builder names a builder cluster, and a tenant for a tenant's image, but
 * builds an image and never becomes a node).
 */
export function clusterOf(tags: Tags): { clusterId: string; tenantId: string } | null {
  if (tags[CLUSTER_TAGS.imageId]) return null;
  const clusterId = tags[CLUSTER_TAGS.cluster];
  const tenantId = tags[CLUSTER_TAGS.tenant];
  return clusterId && tenantId ? { clusterId, tenantId } : null;
}

/** The agent's Secret, as the agent manifest in a node's user data holds it (`AGENT_SECRET_KEYS`). */
export interface AgentSecret {
  natsUrl: string;
  clusterId: string;
  tenantId: string;
  /** Its NATS credentials file; null when NATS does not authenticate. */
  natsCredentials: string | null;
}

/** What a machine's user data makes of it. */
export type NodeBoot =
  /** A node; the one that carries the agent's manifest (the first control-plane node) also its agent's Secret. */
  | { ok: true; agent: AgentSecret | null }
  /** Not a node: why, in words fit for a state reason; `missing` when there was no user data at all. */
  | { ok: false; missing: boolean; reason: string };

const fail = (reason: string): NodeBoot => ({ ok: false, missing: false, reason });

interface WriteFile {
  path?: unknown;
  content?: unknown;
  encoding?: unknown;
}

/**
 * A `write_files` entry's content, decoded as cloud-init decodes it (plain, b64, gz+b64).
 * @throws on an encoding it does not know
 */
function contentOf(file: WriteFile): string {
  const content = typeof file.content === 'string' ? file.content : '';
  const encoding = typeof file.encoding === 'string' ? file.encoding.toLowerCase() : 'text/plain';
  if (encoding === 'text/plain') return content;
  if (encoding === 'b64' || encoding === 'base64') return Buffer.from(content, 'base64').toString('utf8');
  if (['gz+b64', 'gzip+b64', 'gz+base64', 'gzip+base64'].includes(encoding))
    return gunzipSync(Buffer.from(content, 'base64')).toString('utf8');
  throw new Error(`unknown encoding ${encoding}`);
}

const firstLine = (message: string) => message.split('\n')[0]!.slice(0, 200);

/** The YAML documents of a file, or why they do not parse. */
function documentsOf(path: string, text: string): { docs: unknown[] } | { error: string } {
  const docs = parseAllDocuments(text);
  const broken = (Array.isArray(docs) ? docs : [docs]).find((d) => d.errors.length > 0);
  if (broken) return { error: `${path} does not parse as YAML: ${firstLine(broken.errors[0]!.message)}` };
  return { docs: (Array.isArray(docs) ? docs : [docs]).map((d) => d.toJS() as unknown) };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The agent's Secret in its manifest, or why there is none. */
function agentSecretOf(text: string): AgentSecret | string {
  const parsed = documentsOf(BOOTSTRAP_PATHS.agentManifest, text);
  if ('error' in parsed) return parsed.error;
  const secret = parsed.docs.find((d) => isObject(d) && d.kind === 'Secret' && d.apiVersion === 'v1');
  if (!isObject(secret)) return `the agent manifest at ${BOOTSTRAP_PATHS.agentManifest} has no Secret`;
  // `data` is base64, `stringData` plain and wins, as the API server merges them.
  const data = isObject(secret.data)
    ? Object.fromEntries(
        Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString('utf8')]),
      )
    : {};
  const values: Record<string, unknown> = { ...data, ...(isObject(secret.stringData) ? secret.stringData : {}) };
  const value = (key: string) =>
    typeof values[key] === 'string' && values[key] !== '' ? (values[key] as string) : null;
  const required = [AGENT_SECRET_KEYS.natsUrl, AGENT_SECRET_KEYS.clusterId, AGENT_SECRET_KEYS.tenantId];
  const missing = required.filter((key) => value(key) === null);
  if (missing.length > 0) return `the agent's Secret in ${BOOTSTRAP_PATHS.agentManifest} lacks ${missing.join(', ')}`;
  return {
    natsUrl: value(AGENT_SECRET_KEYS.natsUrl)!,
    clusterId: value(AGENT_SECRET_KEYS.clusterId)!,
    tenantId: value(AGENT_SECRET_KEYS.tenantId)!,
    natsCredentials: value(AGENT_SECRET_KEYS.natsCredentials),
  };
}

const KUBEADM_KINDS = new Set(['InitConfiguration', 'JoinConfiguration']);

/**
 * Reads a machine's user data as a node's: `#cloud-config` YAML whose `write_files` put a
 * kubeadm configuration (an InitConfiguration or JoinConfiguration) at
 * `BOOTSTRAP_PATHS.kubeadmConfig`, and, on the first control-plane node, the agent's manifest
 * at `BOOTSTRAP_PATHS.agentManifest` with its Secret.
 */
export function readUserData(userData: string | undefined): NodeBoot {
  if (!userData || userData.trim() === '') return { ok: false, missing: true, reason: 'no user data' };
  if (!/^#cloud-config[ \t]*(\r?\n|$)/.test(userData)) return fail('the user data is not #cloud-config');
  let config: unknown;
  try {
    config = parse(userData);
  } catch (error) {
    return fail(`the #cloud-config does not parse as YAML: ${firstLine((error as Error).message)}`);
  }
  if (!isObject(config)) return fail('the #cloud-config is not a mapping');
  const files = Array.isArray(config.write_files) ? (config.write_files as unknown[]).filter(isObject) : [];
  const file = (path: string) => files.find((f) => (f as WriteFile).path === path) as WriteFile | undefined;

  const kubeadmFile = file(BOOTSTRAP_PATHS.kubeadmConfig);
  if (!kubeadmFile) return fail(`no kubeadm configuration at ${BOOTSTRAP_PATHS.kubeadmConfig}`);
  let kubeadmText: string;
  try {
    kubeadmText = contentOf(kubeadmFile);
  } catch (error) {
    return fail(`${BOOTSTRAP_PATHS.kubeadmConfig}: ${(error as Error).message}`);
  }
  const kubeadm = documentsOf(BOOTSTRAP_PATHS.kubeadmConfig, kubeadmText);
  if ('error' in kubeadm) return fail(kubeadm.error);
  const kinds = kubeadm.docs
    .filter(isObject)
    .filter((d) => typeof d.apiVersion === 'string' && d.apiVersion.startsWith('kubeadm.k8s.io/'));
  if (!kinds.some((d) => KUBEADM_KINDS.has(String(d.kind))))
    return fail(
      `the kubeadm configuration at ${BOOTSTRAP_PATHS.kubeadmConfig} has no InitConfiguration or JoinConfiguration`,
    );

  const manifestFile = file(BOOTSTRAP_PATHS.agentManifest);
  if (!manifestFile) return { ok: true, agent: null };
  let manifest: string;
  try {
    manifest = contentOf(manifestFile);
  } catch (error) {
    return fail(`${BOOTSTRAP_PATHS.agentManifest}: ${(error as Error).message}`);
  }
  const agent = agentSecretOf(manifest);
  return typeof agent === 'string' ? fail(agent) : { ok: true, agent };
}

/**
 * Why a machine cannot boot as a node, in the cloud's words, or null when it can (or is no
 * cluster's machine, whose user data is its own business). Missing user data fails only when
 * `requireUserData`; otherwise the machine boots as it did before user data was written (its
 * agent from its tags).
 */
export function bootFailure(machine: { tags: Tags; userData?: string }, requireUserData: boolean): string | null {
  if (!clusterOf(machine.tags)) return null;
  const boot = readUserData(machine.userData);
  if (boot.ok || (boot.missing && !requireUserData)) return null;
  return boot.reason;
}

/** The state reason of a machine whose bootstrap failed: it shut itself down (as cloud-init's failure hooks do). */
export function bootFailedReason(why: string): { code: string; message: string } {
  return {
    code: 'Client.InstanceInitiatedShutdown',
    message: `Client.InstanceInitiatedShutdown: bootstrap failed: ${why}`,
  };
}
