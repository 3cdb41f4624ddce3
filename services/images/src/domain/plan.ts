import { findCatalogueEntry, knownOs, supportedKubernetes, type CatalogueEntry } from './catalogue.js';
import { imageDefinition, signatureOf, type ImageDefinition, type LayerInput } from './signature.js';

/** What an OS layer and a Kubernetes layer ask for, once checked. */
export type ImagePlan =
  /** The catalogue image as it is. */
  | { kind: 'OUT_OF_BOX'; entry: CatalogueEntry; definition: ImageDefinition; signature: string }
  /** A bring-your-own image with Kubernetes on it already and nothing to run: used as is. */
  | { kind: 'BRING_YOUR_OWN'; imageRef: string; definition: ImageDefinition; signature: string }
  /** Built on a machine from the catalogue image or a bring-your-own one. */
  | {
      kind: 'CUSTOMIZED';
      base: { kind: 'catalogue'; entry: CatalogueEntry } | { kind: 'ref'; imageRef: string };
      installKubernetes: boolean;
      definition: ImageDefinition;
      signature: string;
    };

export type PlanResult = { ok: true; plan: ImagePlan } | { ok: false; problem: string };

export const LIMITS = { ansibleRoles: 50, refLength: 256, valuesBytes: 256 * 1024 } as const;
const ROLE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface LayersInput {
  os: LayerInput & { type: string };
  kubernetes: LayerInput & { type: string };
}

/**
 * Decides what image an OS and a Kubernetes layer need, and refuses what cannot be made: an
 * unknown OS or OS version, a Kubernetes minor outside the catalogue, malformed roles or refs.
 * Pure: whether a region or an image ref exists is for the caller to ask the cloud.
 */
export function planImage({ os, kubernetes }: LayersInput): PlanResult {
  const fail = (problem: string): PlanResult => ({ ok: false, problem });
  if (os.type !== 'OS') return fail(`the OS layer has type ${os.type}, not OS`);
  if (kubernetes.type !== 'KUBERNETES') return fail(`the Kubernetes layer has type ${kubernetes.type}, not KUBERNETES`);

  const roles = os.ansibleRoles ?? [];
  if (roles.length > LIMITS.ansibleRoles) return fail(`at most ${LIMITS.ansibleRoles} Ansible roles`);
  const badRole = roles.find((r) => !ROLE.test(r));
  if (badRole !== undefined) return fail(`"${badRole.slice(0, 64)}" is not an Ansible role name`);
  if (os.values != null && Buffer.byteLength(os.values) > LIMITS.valuesBytes)
    return fail(`OS values are larger than ${LIMITS.valuesBytes / 1024} KiB`);
  const imageRef = os.imageRef ?? null;
  if (imageRef !== null && (imageRef.length === 0 || imageRef.length > LIMITS.refLength || /\s/.test(imageRef))) {
    return fail(`imageRef must be 1-${LIMITS.refLength} characters without spaces`);
  }
  if (os.skipK8sInstall && imageRef === null)
    return fail('skipK8sInstall needs an imageRef: the image that already has Kubernetes');

  const name = knownOs(os.name);
  if (!name.ok) return fail(name.problem);

  if (imageRef === null) {
    const entry = findCatalogueEntry(os.name, os.version, kubernetes.version);
    if (!entry.ok) return fail(entry.problem);
    if (roles.length === 0) {
      // Values without roles change nothing on the image: they are the roles' variables.
      const definition = imageDefinition({ name: os.name, version: os.version }, entry.value.kubernetesMinor);
      return {
        ok: true,
        plan: { kind: 'OUT_OF_BOX', entry: entry.value, definition, signature: signatureOf(definition) },
      };
    }
    const definition = imageDefinition(os, kubernetes.version);
    return {
      ok: true,
      plan: {
        kind: 'CUSTOMIZED',
        base: { kind: 'catalogue', entry: entry.value },
        installKubernetes: true,
        definition,
        signature: signatureOf(definition),
      },
    };
  }

  const k8s = supportedKubernetes(kubernetes.version);
  // A bring-your-own image that has Kubernetes already may have any version of it; one we install must be one we ship.
  if (!os.skipK8sInstall && !k8s.ok) return fail(k8s.problem);
  const definition = imageDefinition(os, kubernetes.version);
  const signature = signatureOf(definition);
  if (os.skipK8sInstall && roles.length === 0)
    return { ok: true, plan: { kind: 'BRING_YOUR_OWN', imageRef, definition, signature } };
  return {
    ok: true,
    plan: {
      kind: 'CUSTOMIZED',
      base: { kind: 'ref', imageRef },
      installKubernetes: !os.skipK8sInstall,
      definition,
      signature,
    },
  };
}
