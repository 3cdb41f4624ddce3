import { defineEvent, defineRequest, type StreamDef } from '@fleetgraph/kit/core';
import { z } from 'zod';
import { cloudTypes, packLayerSchema } from './profiles.js';

export const imageStatuses = ['PENDING', 'BUILDING', 'COPYING', 'READY', 'FAILED'] as const;
export const imageSources = ['OUT_OF_BOX', 'CUSTOMIZED', 'BRING_YOUR_OWN'] as const;

/** An image as it travels between services (the GraphQL `Image` plus its tenant). */
export const imageSchema = z.object({
  id: z.string(),
  /** `public` for the out-of-the-box catalogue, else the tenant that owns it. */
  tenantId: z.string(),
  signature: z.string(),
  os: z.string(),
  osVersion: z.string(),
  kubernetesVersion: z.string().nullable(),
  cloud: z.enum(cloudTypes),
  region: z.string(),
  source: z.enum(imageSources),
  status: z.enum(imageStatuses),
  /** AMI id, Azure image id or local image name, once known. */
  artifactId: z.string().nullable(),
  ansibleRoles: z.array(z.string()),
  /** Why it FAILED, in the cloud's words; progress notes otherwise. */
  message: z.string().nullable(),
  /** What it is, e.g. "Ubuntu 22.04 LTS ... hardened to the CIS ... Benchmark". Added after v1 shipped: optional. */
  description: z.string().nullable().optional(),
  createdAt: z.string(),
});
export type ImageMessage = z.infer<typeof imageSchema>;

/**
 * `images.v1.resolve`: the image for an OS pack + Kubernetes pack on a cloud and region, for a
 * cluster of a tenant. Starts a copy or build when none is ready, and answers at once with the
 * current state; the orchestrator asks again (or watches `images.v1.status`) until READY.
 * Equal definitions resolve to one image, even when asked concurrently.
 * Errors: BAD_REQUEST with a clear message for an unknown OS, a region the cloud does not
 * have, or an imageRef the cloud does not know.
 */
export const resolveImage = defineRequest('images.v1.resolve', {
  request: z.object({
    tenantId: z.string().min(1),
    projectId: z.string().min(1),
    /** The cluster that will use it: recorded for `Cluster.images`. */
    clusterId: z.string().min(1).optional(),
    cloud: z.enum(cloudTypes),
    region: z.string().min(1),
    credentialRef: z.string().nullable().optional(),
    os: packLayerSchema,
    kubernetes: packLayerSchema,
  }),
  reply: imageSchema,
});

// Only event subjects: a stream that captured request subjects would answer requests with its PubAck.
export const IMAGES_STREAM: StreamDef = {
  name: 'IMAGES',
  subjects: ['images.v1.status.>'],
  maxAgeMs: 7 * 24 * 3600_000,
  maxMsgsPerSubject: 100,
};

/** `images.v1.status.<tenantId>.<imageId>`: an image changed status (tenantId `public` for the catalogue). */
export const imageStatusChanged = defineEvent({
  prefix: 'images.v1.status',
  stream: IMAGES_STREAM.name,
  schema: imageSchema,
  keys: ['tenantId', 'id'] as const,
});
