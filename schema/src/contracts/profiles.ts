import { defineEvent, defineRequest, type StreamDef } from '@fleetgraph/kit/core';
import { z } from 'zod';
import { enumOf } from './enums.js';

export const packTypes = ['OS', 'KUBERNETES', 'CNI', 'CSI', 'ADDON'] as const;
/** The clouds Fleetgraph provisions on: contract.graphql's `CloudType`, the one definition every service imports. */
export const cloudTypes = ['AWS', 'AZURE', 'LOCAL'] as const;
export type CloudType = (typeof cloudTypes)[number];
export const CloudType = enumOf(cloudTypes);

export const packLayerSchema = z.object({
  type: z.enum(packTypes),
  name: z.string(),
  version: z.string(),
  values: z.string().nullable().optional(),
  ansibleRoles: z.array(z.string()).nullable().optional(),
  imageRef: z.string().nullable().optional(),
  skipK8sInstall: z.boolean().nullable().optional(),
});
export type PackLayerMessage = z.infer<typeof packLayerSchema>;

/** A cluster profile as it travels between services. */
export const profileSchema = z.object({
  id: z.string(),
  tenantId: z.string(),
  projectId: z.string(),
  name: z.string(),
  version: z.string(),
  description: z.string().nullable(),
  cloud: z.enum(cloudTypes).nullable(),
  layers: z.array(packLayerSchema),
  createdAt: z.string(),
});
export type ProfileMessage = z.infer<typeof profileSchema>;

/** `profiles.v1.get`: a profile by id, visible only within the asking tenant (and project, when given). */
export const getProfile = defineRequest('profiles.v1.get', {
  request: z.object({ tenantId: z.string().min(1), projectId: z.string().min(1).optional(), id: z.string().min(1) }),
  reply: profileSchema,
});

/** `profiles.v1.versions`: every version of a profile's name, newest first (for available updates). */
export const listProfileVersions = defineRequest('profiles.v1.versions', {
  request: z.object({ tenantId: z.string().min(1), projectId: z.string().min(1), name: z.string().min(1) }),
  reply: z.object({ profiles: z.array(profileSchema) }),
});

// Only event subjects: a stream that captured request subjects would answer requests with its PubAck.
export const PROFILES_STREAM: StreamDef = {
  name: 'PROFILES',
  subjects: ['profiles.v1.created.>'],
  maxAgeMs: 30 * 24 * 3600_000,
};

/** `profiles.v1.created.<tenantId>.<projectId>`: a profile version was created. */
export const profileCreated = defineEvent({
  prefix: 'profiles.v1.created',
  stream: PROFILES_STREAM.name,
  schema: profileSchema,
  keys: ['tenantId', 'projectId'] as const,
});
