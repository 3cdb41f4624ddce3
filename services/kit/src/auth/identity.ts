import { z } from 'zod';
import type { FieldCondition } from '../store/store.js';

export const ProjectRole = { viewer: 'viewer', editor: 'editor', admin: 'admin' } as const;
export type ProjectRole = (typeof ProjectRole)[keyof typeof ProjectRole];

const rank: Record<ProjectRole, number> = { viewer: 1, editor: 2, admin: 3 };

const idToken = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-]+$/, 'only letters, digits, "-" and "_"');

/** The claims of a Fleetgraph bearer token (see the end of contract.graphql). */
export const claimsSchema = z.object({
  sub: z.string().min(1).max(256),
  tenantId: idToken,
  tenantAdmin: z.boolean().optional(),
  projects: z.record(idToken, z.enum(['admin', 'editor', 'viewer'])).optional(),
});
export type Claims = z.infer<typeof claimsSchema>;

/**
 * The verified caller. Every repository call is scoped through it: `readScope()` for reads,
 * `can(role, projectId)` before writes. A tenant admin reads every project of its tenant and
 * writes none by that right.
 */
export class Identity {
  constructor(readonly claims: Claims) {}

  get userId(): string {
    return this.claims.sub;
  }

  get tenantId(): string {
    return this.claims.tenantId;
  }

  /** The caller's role in a project, if any. */
  role(projectId: string): ProjectRole | undefined {
    return this.claims.projects?.[projectId];
  }

  /** Whether the caller holds at least `role` in the project. */
  can(role: ProjectRole, projectId: string): boolean {
    const held = this.role(projectId);
    return held !== undefined && rank[held] >= rank[role];
  }

  canRead(projectId: string): boolean {
    return this.claims.tenantAdmin === true || this.can('viewer', projectId);
  }

  /**
   * The projects the caller may read: `'all'` of its tenant for a tenant admin, else the
   * projects where it holds any role.
   */
  readableProjects(): 'all' | string[] {
    if (this.claims.tenantAdmin) return 'all';
    return Object.keys(this.claims.projects ?? {});
  }

  /**
   * A store filter limiting reads to what the caller may see, optionally narrowed to one
   * project. Returns null when that project is not readable (the caller then sees nothing).
   */
  readScope(projectId?: string | null): { tenantId: string; projectId?: FieldCondition } | null {
    if (projectId != null) {
      return this.canRead(projectId) ? { tenantId: this.tenantId, projectId: { eq: projectId } } : null;
    }
    const projects = this.readableProjects();
    if (projects === 'all') return { tenantId: this.tenantId };
    return { tenantId: this.tenantId, projectId: { in: projects } };
  }

  /** Whether a stored document of (tenantId, projectId) is visible to the caller. */
  canSee(doc: { tenantId: string; projectId: string }): boolean {
    return doc.tenantId === this.tenantId && this.canRead(doc.projectId);
  }
}
