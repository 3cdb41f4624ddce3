import { DashboardApplyUpdateDocument, type DashboardClusterQuery } from '@fleetgraph/client';
import { useState } from 'preact/hooks';
import type { ApiError } from '../api.js';
import { useApp } from '../hooks.js';
import { FormErrors, formatTime } from './bits.js';
import './forms.css';

type Cluster = NonNullable<DashboardClusterQuery['cluster']>;
type Layer = Cluster['profile']['layers'][number];

/** What a version changes in the layers of the cluster's profile: "kubernetes 1.30.4 → 1.31.0", "+ cilium 1.16". */
function layerChanges(current: readonly Layer[], next: readonly Layer[]): string[] {
  const changes: string[] = [];
  for (const layer of next) {
    const was = current.find((l) => l.type === layer.type && l.name === layer.name);
    if (!was) changes.push(`+ ${layer.name} ${layer.version}`);
    else if (was.version !== layer.version) changes.push(`${layer.name} ${was.version} → ${layer.version}`);
  }
  for (const layer of current)
    if (!next.some((l) => l.type === layer.type && l.name === layer.name)) changes.push(`− ${layer.name}`);
  return changes;
}

const slug = (text: string) => text.replace(/[^A-Za-z0-9_-]/g, '-');

/**
 * The newer versions of the cluster's profile (`availableUpdates`, newest first), each with an
 * "Apply" button for the project's admins (`applyClusterUpdate` needs the admin role); its
 * userErrors show in its row. The page reads the cluster again after, and live as it rolls out.
 */
export function Updates({
  cluster,
  mayApply,
  onChanged,
}: {
  cluster: Cluster;
  mayApply: boolean;
  onChanged: () => void;
}) {
  const { api } = useApp();
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const [busy, setBusy] = useState<string>();
  const [done, setDone] = useState('');
  const updates = cluster.availableUpdates;

  const apply = async (profile: Cluster['availableUpdates'][number]) => {
    setBusy(profile.id);
    setDone('');
    setErrors({});
    try {
      const { applyClusterUpdate } = await api.request(DashboardApplyUpdateDocument, {
        clusterId: cluster.id,
        profileId: profile.id,
      });
      if (applyClusterUpdate.userErrors.length > 0)
        setErrors({ [profile.id]: applyClusterUpdate.userErrors.map((e) => e.message) });
      else if (applyClusterUpdate.cluster) {
        const { generation, profile: now } = applyClusterUpdate.cluster;
        setDone(`Applying ${now.name} ${now.version}: generation ${generation}, rolled out node by node.`);
        onChanged();
      }
    } catch (failure) {
      setErrors({ [profile.id]: [(failure as ApiError).message] });
    } finally {
      setBusy(undefined);
    }
  };

  return (
    <section aria-labelledby="updates-title">
      <h2 id="updates-title">Profile updates</h2>
      {updates.length === 0 ? (
        <p class="muted">
          {cluster.profile.name} {cluster.profile.version} is the newest version of its profile.
        </p>
      ) : (
        <table class="updates">
          <caption class="visually-hidden">
            Newer versions of profile {cluster.profile.name} (the cluster has {cluster.profile.version}), newest first
          </caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Changes to {cluster.profile.version}</th>
              <th scope="col">Cloud</th>
              <th scope="col">Created</th>
              {mayApply && (
                <th scope="col">
                  <span class="visually-hidden">Apply</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {updates.map((profile) => {
              const changes = layerChanges(cluster.profile.layers, profile.layers);
              const rowErrors = errors[profile.id] ?? [];
              const errorId = `update-${slug(profile.version)}-error`;
              return (
                <tr key={profile.id} data-update={profile.version}>
                  <th scope="row">{profile.version}</th>
                  <td>
                    {changes.length ? changes.join(', ') : 'no layer changes'}
                    {profile.description && <span class="detail muted">{profile.description}</span>}
                  </td>
                  <td>{profile.cloud ?? 'any'}</td>
                  <td>{formatTime(profile.createdAt)}</td>
                  {mayApply && (
                    <td>
                      <button
                        type="button"
                        disabled={busy !== undefined}
                        aria-describedby={rowErrors.length ? errorId : undefined}
                        onClick={() => void apply(profile)}
                      >
                        Apply {profile.version}
                      </button>
                      <FormErrors id={errorId} errors={rowErrors} />
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {!mayApply && updates.length > 0 && (
        <p class="muted">Applying an update needs the admin role in project {cluster.projectId}.</p>
      )}
      <p class="ok" role="status">
        {done}
      </p>
    </section>
  );
}
