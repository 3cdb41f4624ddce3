import { createHash } from 'node:crypto';

/**
 * The canonical definition of an image: everything that makes two images differ, and nothing
 * else. Equal definitions have equal signatures and share one image.
 */
export interface ImageDefinition {
  os: {
    name: string;
    version: string;
    /** The OS pack's values (the roles' variables), line endings normalised; null when none. */
    values: string | null;
    /** Ansible roles, in the order they run. */
    ansibleRoles: string[];
    /** The bring-your-own image it starts from; null for the out-of-the-box one. */
    imageRef: string | null;
    /** Whether Kubernetes is already on the bring-your-own image. */
    skipK8sInstall: boolean;
  };
  kubernetes: {
    /** The full version for customised images; the catalogue minor for out-of-the-box ones. */
    version: string;
  };
}

/** The version of the canonical form: bump it when the form changes, so old signatures never collide with new ones. */
export const SIGNATURE_FORM = 1;
/** Hex characters of the signature: 64 bits. */
export const SIGNATURE_LENGTH = 16;

/** An OS and Kubernetes layer as the resolve request carries them. */
export interface LayerInput {
  name: string;
  version: string;
  values?: string | null;
  ansibleRoles?: readonly string[] | null;
  imageRef?: string | null;
  skipK8sInstall?: boolean | null;
}

/** Values text as it is signed: CRLF as LF, trailing whitespace gone, empty as none. */
export function normaliseValues(values: string | null | undefined): string | null {
  const text = values?.replace(/\r\n?/g, '\n').trimEnd();
  return text ? text : null;
}

/** The definition of a customised, bring-your-own or out-of-the-box image from its layers. */
export function imageDefinition(os: LayerInput, kubernetesVersion: string): ImageDefinition {
  return {
    os: {
      name: os.name,
      version: os.version,
      values: normaliseValues(os.values),
      ansibleRoles: [...(os.ansibleRoles ?? [])],
      imageRef: os.imageRef ? os.imageRef : null,
      skipK8sInstall: os.skipK8sInstall === true,
    },
    kubernetes: { version: kubernetesVersion },
  };
}

/**
 * JSON with every object's keys sorted, so that equal values print equally whatever their key
 * order. Arrays keep their order.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/** The signature of a definition: SHA-256 of its canonical JSON, as 16 hex characters. */
export function signatureOf(definition: ImageDefinition): string {
  return createHash('sha256')
    .update(canonicalJson({ form: SIGNATURE_FORM, ...definition }))
    .digest('hex')
    .slice(0, SIGNATURE_LENGTH);
}
