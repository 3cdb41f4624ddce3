import {
  batchedGet,
  DuplicateKeyError,
  write,
  type Collection,
  type Identity,
  type Outbox,
  type Page,
  type Store,
  type StoredDoc,
} from '@fleetgraph/kit';
import { profileCreated } from '@fleetgraph/schema';
import { ulid } from 'ulid';
import type { ClusterProfile, ProfileDraft } from '../domain/profile.js';

/** Most versions one profile name may have; `versions` reads them all. */
export const MAX_VERSIONS_PER_NAME = 500;

/**
 * Cluster profiles in the store. Every read is scoped by the caller's identity: a profile of
 * another tenant, or of a project the caller cannot read, is indistinguishable from a missing one.
 */
export class ProfileRepository {
  /** `profiles.get`, the gets of one turn read together (the gateway's `_entities` of many clusters' profiles). */
  private readonly getStored: (id: string) => Promise<StoredProfile | null>;

  private constructor(
    private readonly store: Store,
    private readonly outbox: Outbox,
    private readonly profiles: Collection<StoredProfile>,
  ) {
    this.getStored = batchedGet(profiles);
  }

  /** Opens the collection; `outbox` (of the same store, carrying profileCreated) announces new versions. */
  static async open(store: Store, outbox: Outbox): Promise<ProfileRepository> {
    const profiles = await store.collection<StoredProfile>({
      name: 'profiles',
      indexes: [
        { fields: ['tenantId', 'projectId', 'name', 'semver'], unique: true },
        { fields: ['tenantId', 'projectId', 'createdAt'] },
        { fields: ['tenantId', 'createdAt'] },
      ],
    });
    return new ProfileRepository(store, outbox, profiles);
  }

  /**
   * Stores a new version with its `profiles.v1.created` event. @returns null when (project, name,
   * version) exists already.
   */
  async create(tenantId: string, draft: ProfileDraft, now = new Date()): Promise<ClusterProfile | null> {
    const profile: ClusterProfile = {
      id: `prof_${ulid()}`,
      tenantId,
      projectId: draft.projectId,
      name: draft.name,
      version: draft.version,
      description: draft.description ?? null,
      cloud: draft.cloud ?? null,
      layers: draft.layers.map((l) => ({
        type: l.type,
        name: l.name,
        version: l.version,
        values: l.values ?? null,
        ansibleRoles: l.ansibleRoles ? [...l.ansibleRoles] : null,
        imageRef: l.imageRef ?? null,
        skipK8sInstall: l.skipK8sInstall ?? null,
      })),
      createdAt: now.toISOString(),
    };
    try {
      await this.store.commit([
        write.insert(this.profiles, toStored(profile)),
        this.outbox.add(profileCreated, profile, { key: profile.id }),
      ]);
      this.outbox.kick();
      return profile;
    } catch (error) {
      if (error instanceof DuplicateKeyError) return null;
      throw error;
    }
  }

  /** A profile the caller may read, or null. */
  async get(identity: Identity, id: string): Promise<ClusterProfile | null> {
    const doc = await this.getStored(id);
    return doc && identity.canSee(doc) ? fromStored(doc) : null;
  }

  /** A profile of the tenant (and project, when given), for requests from other services. */
  async getInTenant(tenantId: string, id: string, projectId?: string): Promise<ClusterProfile | null> {
    const doc = await this.getStored(id);
    if (!doc || doc.tenantId !== tenantId || (projectId !== undefined && doc.projectId !== projectId)) return null;
    return fromStored(doc);
  }

  /** Profiles the caller may read, newest first, in one project or in every readable one. */
  async list(
    identity: Identity,
    options: { projectId?: string | null; first: number; after?: string | null },
  ): Promise<Page<ClusterProfile>> {
    const scope = identity.readScope(options.projectId);
    if (!scope) return { nodes: [], cursors: [], hasNextPage: false, endCursor: null };
    const page = await this.profiles.find({
      where: scope,
      orderBy: [{ field: 'createdAt', direction: 'desc' }],
      first: options.first,
      after: options.after,
    });
    return { ...page, nodes: page.nodes.map(fromStored) };
  }

  /** Every version of a name in a project, in store order (the caller sorts by semver). */
  async versionsOf(tenantId: string, projectId: string, name: string): Promise<ClusterProfile[]> {
    const page = await this.profiles.find({ where: { tenantId, projectId, name }, first: MAX_VERSIONS_PER_NAME });
    return page.nodes.map(fromStored);
  }
}

/**
 * The stored shape: the store owns `version` (its optimistic-concurrency counter), so the
 * profile's own semantic version is kept as `semver`.
 */
interface StoredProfile extends StoredDoc {
  tenantId: string;
  projectId: string;
  name: string;
  semver: string;
  description: string | null;
  cloud: ClusterProfile['cloud'];
  layers: ClusterProfile['layers'];
  createdAt: string;
}

function toStored(p: ClusterProfile): Omit<StoredProfile, 'version'> {
  const { version, ...rest } = p;
  return { ...rest, semver: version };
}

function fromStored(doc: StoredProfile): ClusterProfile {
  const { version: _storeVersion, semver, ...rest } = doc;
  return { ...rest, version: semver };
}
