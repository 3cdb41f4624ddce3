import {
  DashboardFleetDocument,
  DashboardFleetHealthDocument,
  DashboardFleetLiveDocument,
  type DashboardConditionFragment,
  type DashboardFleetHealthSubscription,
  type DashboardFleetLiveSubscription,
  type FleetClusterFragment,
  type HealthStatus,
} from '@fleetgraph/client';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { HealthBadge, PhaseBadge, UsageBar } from '../components/bits.js';
import { useOnReconnect, useQuery, useSubscription } from '../hooks.js';
import { Link } from '../router.js';

/** How long live changes are gathered before the page is drawn again (a fleet's first state comes as a burst). */
const DRAW_EVERY_MS = 100;

const PHASES = ['PENDING', 'PROVISIONING', 'RUNNING', 'UPDATING', 'DELETING', 'DELETED'] as const;
const HEALTH: HealthStatus[] = ['HEALTHY', 'PROGRESSING', 'UNHEALTHY', 'UNKNOWN'];

type LiveCluster = DashboardFleetLiveSubscription['fleet'];
type LiveHealth = DashboardFleetHealthSubscription['fleetHealth'];

/** A row of the overview, from the list read at the start or from the live subscriptions. */
interface Row {
  id: string;
  name: string;
  projectId: string;
  phase: FleetClusterFragment['phase'];
  /** The failed milestone, else the active one. */
  focus: DashboardConditionFragment | null | undefined;
  allReached: boolean;
  nodes: number;
  cloud: string;
  region: string;
  health: { status: HealthStatus; stale: boolean };
  cpu: number | null;
  memory: number | null;
}

/** The condition worth a glance: a failed one, else the one being worked on. */
export function focusCondition(conditions: readonly DashboardConditionFragment[]) {
  return conditions.find((c) => c.failed) ?? conditions.find((c) => c.active);
}

function rowOfList(cluster: FleetClusterFragment): Row {
  return {
    id: cluster.id,
    name: cluster.name,
    projectId: cluster.projectId,
    phase: cluster.phase,
    focus: focusCondition(cluster.conditions),
    allReached: cluster.conditions.length > 0,
    nodes: cluster.allNodes.nodes,
    cloud: cluster.cloud.type,
    region: cluster.cloud.region,
    health: cluster.health,
    cpu: cluster.usage.nodes ? cluster.usage.cpuUsage : null,
    memory: cluster.usage.nodes ? cluster.usage.memoryUsage : null,
  };
}

/** The list's row (if any) updated by what the subscriptions said since. */
function liveRow(base: Row | undefined, cluster: LiveCluster | undefined, health: LiveHealth | undefined): Row | null {
  let row = base;
  if (cluster) {
    row = {
      ...(row ?? { health: { status: 'UNKNOWN', stale: false }, cpu: null, memory: null }),
      id: cluster.id,
      name: cluster.name,
      projectId: cluster.projectId,
      phase: cluster.phase,
      focus: cluster.condition,
      allReached: cluster.condition === null && cluster.phase !== 'PENDING',
      nodes: cluster.nodeCount,
      cloud: cluster.cloud,
      region: cluster.region,
    };
  }
  if (!row) return null;
  if (health) row = { ...row, health, cpu: health.cpuUsage, memory: health.memoryUsage };
  return row;
}

/**
 * The fleet, live: the list is read once (and again when the live connection comes back), and the
 * `fleet` and `fleetHealth` subscriptions, which start with the current state of every cluster
 * the user may read, keep every row current and bring clusters created elsewhere.
 */
export function Overview() {
  const fleet = useQuery(DashboardFleetDocument, { first: 100 }, 'fleet');
  const [project, setProject] = useState('');
  const [phase, setPhase] = useState('');
  const [health, setHealth] = useState('');
  const live = useRef({ clusters: new Map<string, LiveCluster>(), health: new Map<string, LiveHealth>() });
  const [drawn, setDrawn] = useState(0);
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const redraw = () => {
    pending.current ??= setTimeout(() => {
      pending.current = undefined;
      setDrawn((n) => n + 1);
    }, DRAW_EVERY_MS);
  };
  useEffect(() => () => clearTimeout(pending.current), []);
  useSubscription(DashboardFleetLiveDocument, {}, 'fleet', ({ fleet: cluster }) => {
    live.current.clusters.set(cluster.id, cluster);
    redraw();
  });
  useSubscription(DashboardFleetHealthDocument, {}, 'fleet', ({ fleetHealth }) => {
    live.current.health.set(fleetHealth.clusterId, fleetHealth);
    redraw();
  });
  // Back from a lost connection, the subscriptions start again with the fleet as it is now: what
  // was heard before (a cluster deleted meanwhile included) is forgotten, and the list read again.
  useOnReconnect(() => {
    live.current.clusters.clear();
    live.current.health.clear();
    void fleet.refetch();
  });

  const listed = fleet.data?.clusters.nodes;
  // biome-ignore lint/correctness/useExhaustiveDependencies: `drawn` says when the live maps changed.
  const rows = useMemo(() => {
    const { clusters: heard, health: healths } = live.current;
    const fromList = new Map((listed ?? []).map((c) => [c.id, rowOfList(c)]));
    // Clusters the list does not have yet (created since) first, newest first; then the list's order.
    const ids = [...[...heard.keys()].filter((id) => !fromList.has(id)).reverse(), ...fromList.keys()];
    const all: Row[] = [];
    for (const id of ids) {
      const row = liveRow(fromList.get(id), heard.get(id), healths.get(id));
      if (row && row.phase !== 'DELETED') all.push(row);
    }
    return all;
  }, [listed, drawn]);
  const projects = useMemo(() => [...new Set(rows.map((c) => c.projectId))].sort(), [rows]);
  const shown = rows.filter(
    (c) =>
      (!project || c.projectId === project) && (!phase || c.phase === phase) && (!health || c.health.status === health),
  );
  const groups = new Map<string, Row[]>();
  for (const row of shown) groups.set(row.projectId, [...(groups.get(row.projectId) ?? []), row]);

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
          {fleet.loading && !fleet.data ? 'Loading…' : `${shown.length} of ${rows.length} clusters`}
        </p>
      </form>
      {fleet.error && !fleet.data && (
        <p class="notice" role="alert">
          The fleet cannot be read: {fleet.error.message}
        </p>
      )}
      {fleet.data && rows.length === 0 && (
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
            {members.map((row) => (
              <ClusterRow key={row.id} row={row} />
            ))}
          </tbody>
        </table>
      ))}
      {fleet.data?.clusters.pageInfo.hasNextPage && (
        <p class="muted">The first 100 clusters are read at the start; those heard of since are added.</p>
      )}
    </section>
  );
}

function ClusterRow({ row }: { row: Row }) {
  const { focus } = row;
  return (
    <tr data-cluster={row.name}>
      <th scope="row">
        <Link href={`/clusters/${encodeURIComponent(row.id)}`}>{row.name}</Link>
      </th>
      <td>
        <PhaseBadge phase={row.phase} />
      </td>
      <td>
        <HealthBadge status={row.health.status} stale={row.health.stale} />
      </td>
      <td class={focus?.failed ? 'failed' : undefined}>
        {focus ? (
          <>
            {focus.failed ? 'Failed: ' : ''}
            {focus.type}
            {focus.failed && focus.message ? <span class="detail">{focus.message}</span> : null}
          </>
        ) : row.allReached ? (
          'All reached'
        ) : (
          '–'
        )}
      </td>
      <td>{row.nodes}</td>
      <td>
        {row.cloud} · {row.region}
      </td>
      <td>
        <UsageBar label={`CPU of ${row.name}`} ratio={row.cpu} />
      </td>
      <td>
        <UsageBar label={`Memory of ${row.name}`} ratio={row.memory} />
      </td>
    </tr>
  );
}
