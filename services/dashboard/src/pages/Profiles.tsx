import {
  CreateClusterProfileDocument,
  DashboardProfilesDocument,
  type DashboardProfilesQuery,
} from '@fleetgraph/client';
import { useState } from 'preact/hooks';
import type { ApiError } from '../api.js';
import { canChange } from '../auth.js';
import { FormErrors, formatTime } from '../components/bits.js';
import { useApp, useQuery } from '../hooks.js';

type Profile = DashboardProfilesQuery['clusterProfiles']['nodes'][number];

/** The profiles the user may read, grouped by project and name, newest version first. */
export function Profiles() {
  const { session } = useApp();
  const profiles = useQuery(DashboardProfilesDocument, { first: 100 }, 'profiles');
  const [basedOn, setBasedOn] = useState<Profile>();
  const groups = new Map<string, Profile[]>();
  for (const p of profiles.data?.clusterProfiles.nodes ?? [])
    groups.set(`${p.projectId}/${p.name}`, [...(groups.get(`${p.projectId}/${p.name}`) ?? []), p]);
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Profiles
      </h1>
      {profiles.error && (
        <p class="notice" role="alert">
          The profiles cannot be read: {profiles.error.message}
        </p>
      )}
      {profiles.data && groups.size === 0 && <p>No profiles yet.</p>}
      {[...groups].map(([key, versions]) => {
        const latest = versions[0] as Profile;
        return (
          <section key={key} class="profile" aria-labelledby={`profile-${key}`}>
            <h2 id={`profile-${key}`}>
              {latest.name} <span class="muted">project {latest.projectId}</span>
            </h2>
            <table>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Cloud</th>
                  <th scope="col">Layers</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {versions.map((p) => (
                  <tr key={p.id}>
                    <th scope="row">{p.version}</th>
                    <td>{p.cloud ?? 'any'}</td>
                    <td>{p.layers.map((l) => `${l.name} ${l.version}`).join(', ')}</td>
                    <td>{formatTime(p.createdAt)}</td>
                    <td>
                      {canChange(session, p.projectId) && (
                        <button type="button" onClick={() => setBasedOn(p)}>
                          New version of {p.name} {p.version}
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        );
      })}
      {basedOn && (
        <NewVersion
          key={basedOn.id}
          basedOn={basedOn}
          onDone={() => {
            setBasedOn(undefined);
            void profiles.refetch();
          }}
        />
      )}
    </section>
  );
}

/** A new version of a profile: its layers (versions and values) edited, errors shown at their fields. */
function NewVersion({ basedOn, onDone }: { basedOn: Profile; onDone: () => void }) {
  const { api } = useApp();
  const [version, setVersion] = useState('');
  const [layers, setLayers] = useState(basedOn.layers.map((l) => ({ ...l })));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [other, setOther] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    try {
      const { createClusterProfile } = await api.request(CreateClusterProfileDocument, {
        input: {
          projectId: basedOn.projectId,
          name: basedOn.name,
          version,
          description: basedOn.description,
          cloud: basedOn.cloud,
          layers: layers.map((l) => ({
            type: l.type,
            name: l.name,
            version: l.version,
            values: l.values || null,
            ansibleRoles: l.ansibleRoles,
            imageRef: l.imageRef,
            skipK8sInstall: l.skipK8sInstall,
          })),
        },
      });
      const byField: Record<string, string> = {};
      const rest: string[] = [];
      for (const e of createClusterProfile.userErrors) {
        // ["input", "version"] or ["input", "layers", "2", "values"]
        const key = (e.field ?? []).slice(1).join('.');
        if (key === 'version' || /^layers\.\d+\.(version|values)$/.test(key)) byField[key] = e.message;
        else rest.push(e.message);
      }
      setErrors(byField);
      setOther(rest);
      if (createClusterProfile.profile) onDone();
    } catch (failure) {
      setOther([(failure as ApiError).message]);
    } finally {
      setBusy(false);
    }
  };
  const field = (key: string, id: string) => ({
    id,
    'aria-invalid': errors[key] ? ('true' as const) : undefined,
    'aria-describedby': errors[key] ? `${id}-error` : undefined,
  });
  const error = (key: string, id: string) =>
    errors[key] && (
      <p id={`${id}-error`} class="field-error" role="alert">
        {errors[key]}
      </p>
    );
  return (
    <form class="new-version" aria-labelledby="new-version-title" onSubmit={submit}>
      <h2 id="new-version-title">
        New version of {basedOn.name} (from {basedOn.version})
      </h2>
      <label for="version">Version</label>
      <input
        {...field('version', 'version')}
        name="version"
        value={version}
        placeholder="e.g. 1.1.0"
        onInput={(e) => setVersion(e.currentTarget.value)}
      />
      {error('version', 'version')}
      {layers.map((layer, i) => (
        <fieldset key={`${layer.type}-${layer.name}`}>
          <legend>
            {layer.type} layer: {layer.name}
          </legend>
          <label for={`layer-${i}-version`}>Version</label>
          <input
            {...field(`layers.${i}.version`, `layer-${i}-version`)}
            value={layer.version}
            onInput={(e) => {
              const value = e.currentTarget.value;
              setLayers((all) => all.map((l, j) => (j === i ? { ...l, version: value } : l)));
            }}
          />
          {error(`layers.${i}.version`, `layer-${i}-version`)}
          <label for={`layer-${i}-values`}>Values (YAML)</label>
          <textarea
            {...field(`layers.${i}.values`, `layer-${i}-values`)}
            rows={3}
            value={layer.values ?? ''}
            onInput={(e) => {
              const value = e.currentTarget.value;
              setLayers((all) => all.map((l, j) => (j === i ? { ...l, values: value } : l)));
            }}
          />
          {error(`layers.${i}.values`, `layer-${i}-values`)}
        </fieldset>
      ))}
      <FormErrors errors={other} />
      <button type="submit" class="primary" disabled={busy}>
        Create version
      </button>
    </form>
  );
}
