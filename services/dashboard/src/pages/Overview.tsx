import {
  DashboardConditionsDocument,
  DashboardFleetDocument,
  DashboardHealthDocument,
  type DashboardConditionFragment,
  type FleetClusterFragment,
  type HealthStatus,
} from '@fleetgraph/client';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { HealthBadge, PhaseBadge, UsageBar } from '../components/bits.js';
import { useOnReconnect, useQuery, useSubscription } from '../hooks.js';
import { Link } from '../router.js';

/**
 * How often the list itself is read again. The API has no fleet-wide subscription (its
 * subscriptions are per cluster), so a cluster created elsewhere appears at the next read; every
 * cluster shown is then live through its own subscriptions (phase, conditions, health).
 */
const FLEET_REFRESH_MS = 1_500;
/** Rows that hold subscriptions (two each; a connection holds at most 100). */
const LIVE_ROWS = 45;

const PHASES = ['PENDING', 'PROVISIONING', 'RUNNING', 'UPDATING', 'DELETING', 'DELETED'] as const;
const HEALTH: HealthStatus[] = ['HEALTHY', 'PROGRESSING', 'UNHEALTHY', 'UNKNOWN'];

/** The condition worth a glance: a failed one, else the one being worked on. */
export function focusCondition(conditions: readonly DashboardConditionFragment[]) {
  return conditions.find((c) => c.failed) ?? conditions.find((c) => c.active);
}

export function Overview() {
  const fleet = useQuery(DashboardFleetDocument, { first: 100 }, 'fleet');
  const [project, setProject] = useState('');
  const [phase, setPhase] = useState('');
  const [health, setHealth] = useState('');
  useEffect(() => {
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') void fleet.refetch();
    }, FLEET_REFRESH_MS);
    return () => clearInterval(timer);
  }, [fleet.refetch]);
  useOnReconnect(() => void fleet.refetch());

  const clusters = fleet.data?.clusters.nodes ?? [];
  const projects = useMemo(() => [...new Set(clusters.map((c) => c.projectId))].sort(), [clusters]);
  const shown = clusters.filter(
    (c) =>
      (!project || c.projectId === project) && (!phase || c.phase === phase) && (!health || c.health.status === health),
  );
  const groups = new Map<string, FleetClusterFragment[]>();
  for (const cluster of shown) groups.set(cluster.projectId, [...(groups.get(cluster.projectId) ?? []), cluster]);
  let liveBudget = LIVE_ROWS;

  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        Fleet
      </h1>
      <form class="filters" aria-label="Filter clusters" onSubmit={(event) => event.preventDefault()}>
        <label>
          Project
          <select value={project} onChange={(event) => setProject(event.currentTarget.value)}>
            <option value="">All projects</option>
            {projects.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <label>
          Phase
          <select value={phase} onChange={(event) => setPhase(event.currentTarget.value)}>
            <option value="">Any phase</option>
            {PHASES.map((p) => (
              <option key={p} value={p}>
                {p.charAt(0) + p.slice(1).toLowerCase()}
              </option>
            ))}
          </select>
        </label>
        <label>
          Health
          <select value={health} onChange={(event) => setHealth(event.currentTarget.value)}>
            <option value="">Any health</option>
            {HEALTH.map((h) => (
              <option key={h} value={h}>
                {h.charAt(0) + h.slice(1).toLowerCase()}
              </option>
            ))}
          </select>
        </label>
        <p class="count" aria-live="polite">
          {fleet.loading && !fleet.data ? 'Loading…' : `${shown.length} of ${clusters.length} clusters`}
        </p>
      </form>
      {fleet.error && !fleet.data && (
        <p class="notice" role="alert">
          The fleet cannot be read: {fleet.error.message}
        </p>
      )}
      {fleet.data && clusters.length === 0 && (
        <p>No clusters yet: create one through the API (see the README's "A first cluster").</p>
      )}
      {[...groups].map(([projectId, members]) => (
        <table class="fleet" key={projectId}>
          <caption>
            Project {projectId} <span class="muted">({members.length})</span>
          </caption>
          <thead>
            <tr>
              <th scope="col">Cluster</th>
              <th scope="col">Phase</th>
              <th scope="col">Health</th>
              <th scope="col">Milestone</th>
              <th scope="col">Nodes</th>
              <th scope="col">Cloud</th>
              <th scope="col">CPU</th>
              <th scope="col">Memory</th>
            </tr>
          </thead>
          <tbody>
            {members.map((cluster) => (
              <ClusterRow key={cluster.id} cluster={cluster} live={liveBudget-- > 0} />
            ))}
          </tbody>
        </table>
      ))}
      {fleet.data?.clusters.pageInfo.hasNextPage && <p class="muted">The first 100 clusters are shown.</p>}
    </section>
  );
}

function ClusterRow({ cluster, live }: { cluster: FleetClusterFragment; live: boolean }) {
  const [state, setState] = useState<{
    phase: FleetClusterFragment['phase'];
    conditions: DashboardConditionFragment[];
  }>();
  const [healthNow, setHealthNow] = useState<{ status: HealthStatus; stale: boolean }>();
  // A newer read of the list supersedes what the subscriptions said before it.
  useEffect(() => {
    setState(undefined);
    setHealthNow(undefined);
  }, [cluster]);
  const vars = live ? { clusterId: cluster.id } : null;
  useSubscription(DashboardConditionsDocument, vars, `${cluster.id}:${live}`, ({ clusterConditions }) =>
    setState({ phase: clusterConditions.phase, conditions: clusterConditions.conditions }),
  );
  useSubscription(DashboardHealthDocument, vars, `${cluster.id}:${live}`, ({ clusterHealth }) =>
    setHealthNow(clusterHealth),
  );
  const phase = state?.phase ?? cluster.phase;
  const conditions = state?.conditions ?? cluster.conditions;
  const focus = focusCondition(conditions);
  const healthShown = healthNow ?? cluster.health;
  return (
    <tr data-cluster={cluster.name}>
      <th scope="row">
        <Link href={`/clusters/${encodeURIComponent(cluster.id)}`}>{cluster.name}</Link>
      </th>
      <td>
        <PhaseBadge phase={phase} />
      </td>
      <td>
        <HealthBadge status={healthShown.status} stale={healthShown.stale} />
      </td>
      <td class={focus?.failed ? 'failed' : undefined}>
        {focus ? (
          <>
            {focus.failed ? 'Failed: ' : ''}
            {focus.type}
            {focus.failed && focus.message ? <span class="detail">{focus.message}</span> : null}
          </>
        ) : conditions.length > 0 ? (
          'All reached'
        ) : (
          '–'
        )}
      </td>
      <td>{cluster.allNodes.nodes}</td>
      <td>
        {cluster.cloud.type} · {cluster.cloud.region}
      </td>
      <td>
        <UsageBar label={`CPU of ${cluster.name}`} ratio={cluster.usage.nodes ? cluster.usage.cpuUsage : null} />
      </td>
      <td>
        <UsageBar label={`Memory of ${cluster.name}`} ratio={cluster.usage.nodes ? cluster.usage.memoryUsage : null} />
      </td>
    </tr>
  );
}
