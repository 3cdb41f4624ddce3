import {
  ClusterEventsDocument,
  DashboardClusterDocument,
  DashboardConditionsDocument,
  DashboardHealthDocument,
  DashboardMetricsDocument,
  DashboardScalePoolDocument,
  FollowClusterEventsDocument,
  LogBundleDocument,
  RequestClusterLogsDocument,
  type ClusterEventFieldsFragment,
  type DashboardClusterQuery,
  type DashboardConditionFragment,
  type DashboardHealthSubscription,
  type LogBundleFieldsFragment,
  type UsageScope,
} from '@fleetgraph/client';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ApiError } from '../api.js';
import { canChange, roleIn } from '../auth.js';
import {
  COUNT_ERROR,
  FormErrors,
  formatBytes,
  formatTime,
  HealthBadge,
  PhaseBadge,
  UsageBar,
  wholeNumber,
} from '../components/bits.js';
import { AddPoolForm, ZonesForm, useCloudOffer } from '../components/PoolForms.js';
import { Updates } from '../components/Updates.js';
import { type Sample, UsageChart } from '../components/UsageChart.js';
import { useApp, useOnReconnect, useQuery, useSubscription } from '../hooks.js';
import { Link } from '../router.js';

type Cluster = NonNullable<DashboardClusterQuery['cluster']>;
type Health = DashboardHealthSubscription['clusterHealth'];

/** Events shown at first, and added by each "Load older". */
const EVENTS_PAGE = 50;

/** Calls `fn` once, `ms` after the last of a burst of calls. */
function useDebounced(fn: () => void, ms: number): () => void {
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    clearTimeout(timer.current);
    timer.current = setTimeout(() => latest.current(), ms);
  }, [ms]);
}

export function ClusterPage({ id }: { id: string }) {
  const { session } = useApp();
  const [scope, setScope] = useState<UsageScope>('WORKERS');
  const query = useQuery(DashboardClusterDocument, { id, scope }, `${id}:${scope}`);
  const [conditions, setConditions] = useState<{ phase: Cluster['phase']; conditions: DashboardConditionFragment[] }>();
  const [health, setHealth] = useState<Health>();
  // What the subscriptions tell changes more than they carry (generation, nodes, pools): read it again.
  const refresh = useDebounced(() => void query.refetch(), 400);
  useOnReconnect(refresh);
  useEffect(() => {
    setConditions(undefined);
    setHealth(undefined);
  }, [id]);

  useSubscription(DashboardConditionsDocument, { clusterId: id }, id, ({ clusterConditions }) => {
    setConditions({ phase: clusterConditions.phase, conditions: clusterConditions.conditions });
    refresh();
  });
  useSubscription(DashboardHealthDocument, { clusterId: id }, id, ({ clusterHealth }) => {
    setHealth(clusterHealth);
    refresh();
  });

  const cluster = query.data?.cluster;
  useEffect(() => {
    if (cluster) document.title = `${cluster.name} · Fleetgraph`;
    return () => {
      document.title = 'Fleetgraph';
    };
  }, [cluster?.name]);

  if (query.error && !query.data)
    return (
      <section aria-labelledby="page-title">
        <h1 id="page-title">Cluster</h1>
        <p class="notice" role="alert">
          The cluster cannot be read: {query.error.message}
        </p>
      </section>
    );
  if (!query.data) return <p aria-busy="true">Loading…</p>;
  if (!cluster)
    return (
      <section aria-labelledby="page-title">
        <h1 id="page-title">Cluster not found</h1>
        <p>
          No cluster {id} is visible to you. <Link href="/">Back to the fleet</Link>.
        </p>
      </section>
    );

  const phase = conditions?.phase ?? cluster.phase;
  const milestones = conditions?.conditions ?? cluster.conditions;
  const healthShown = health ?? cluster.health;
  const mayChange = canChange(session, cluster.projectId);
  // applyClusterUpdate needs the admin role of the project (a tenant admin writes nothing by that right).
  const role = roleIn(session, cluster.projectId);
  const mayApply = role === undefined || role === 'admin';
  return (
    <article aria-labelledby="page-title" class="cluster">
      <header class="cluster-head">
        <p class="crumbs">
          <Link href="/">Fleet</Link> / project {cluster.projectId}
        </p>
        <h1 id="page-title" tabIndex={-1}>
          {cluster.name}
        </h1>
        <p class="facts">
          <PhaseBadge phase={phase} /> <HealthBadge status={healthShown.status} stale={healthShown.stale} />{' '}
          <span>
            {cluster.cloud.type} · {cluster.cloud.region}
          </span>{' '}
          <span>
            profile {cluster.profile.name} {cluster.profile.version}
          </span>{' '}
          <span data-testid="generation">
            generation {cluster.generation} (converged to {cluster.observedGeneration})
          </span>
        </p>
        {healthShown.reasons.length > 0 && (
          <ul class="reasons" aria-label="Why it is not healthy">
            {healthShown.reasons.map((r) => (
              <li key={r.factor + r.message}>
                {r.factor}: {r.message}
              </li>
            ))}
          </ul>
        )}
      </header>

      <Milestones conditions={milestones} />
      <Usage cluster={cluster} scope={scope} onScope={setScope} onSample={refresh} />
      <Pools cluster={cluster} mayChange={mayChange} onChanged={refresh} />
      <Updates cluster={cluster} mayApply={mayApply} onChanged={refresh} />
      <Nodes cluster={cluster} />
      <Services cluster={cluster} />
      <Logs cluster={cluster} mayChange={mayChange} />
      <Events clusterId={cluster.id} />
    </article>
  );
}

function Milestones({ conditions }: { conditions: readonly DashboardConditionFragment[] }) {
  return (
    <section aria-labelledby="milestones-title">
      <h2 id="milestones-title">Milestones</h2>
      {conditions.length === 0 ? (
        <p class="muted">Not started yet.</p>
      ) : (
        <ol class="timeline">
          {conditions.map((c) => {
            const state = c.failed ? 'failed' : c.status === 'TRUE' ? 'done' : c.active ? 'active' : 'pending';
            const label = { failed: 'Failed', done: 'Done', active: 'In progress', pending: 'Waiting' }[state];
            return (
              <li
                key={c.type}
                class={`milestone ${state}`}
                data-state={state}
                aria-current={c.active ? 'step' : undefined}
              >
                <span class="milestone-state">{label}</span> <strong>{c.type}</strong>
                {c.reason && <span class="muted"> · {c.reason}</span>}
                <span class="muted"> · since {formatTime(c.lastTransitionTime)}</span>
                {(c.failed || c.active) && c.message && (
                  <p class={c.failed ? 'milestone-message failed' : 'milestone-message'}>
                    {c.message}
                    {c.failed && (
                      <span class="muted">
                        {' '}
                        ({c.code ?? 'error'}, {c.attempts} failed {c.attempts === 1 ? 'attempt' : 'attempts'};{' '}
                        {c.nextAttemptAt ? (
                          <span data-next-attempt={c.nextAttemptAt}>next try {formatTime(c.nextAttemptAt)}</span>
                        ) : (
                          'retrying'
                        )}
                        )
                      </span>
                    )}
                  </p>
                )}
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}

const cores = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)}`;
const gib = (value: number) => formatBytes(value);

function Usage({
  cluster,
  scope,
  onScope,
  onSample,
}: {
  cluster: Cluster;
  scope: UsageScope;
  onScope: (scope: UsageScope) => void;
  onSample: () => void;
}) {
  const [usage, setUsage] = useState(cluster.chart);
  const [series, setSeries] = useState<{ t: number; cpu: number; memory: number }[]>([]);
  const loadedFor = useRef('');
  // The series comes from the query once per cluster and scope, then grows from clusterMetrics.
  useEffect(() => {
    const key = `${cluster.id}:${scope}:${cluster.chart.scope}`;
    if (loadedFor.current === key || cluster.chart.scope !== scope) return;
    loadedFor.current = key;
    setUsage(cluster.chart);
    setSeries(
      cluster.chart.series.map((s) => ({ t: Date.parse(s.time) / 1000, cpu: s.cpuCores, memory: s.memoryBytes })),
    );
  }, [cluster, scope]);
  useSubscription(
    DashboardMetricsDocument,
    { clusterId: cluster.id, scope },
    `${cluster.id}:${scope}`,
    ({ clusterMetrics }) => {
      if (clusterMetrics.scope !== scope) return;
      setUsage((previous) => ({ ...previous, ...clusterMetrics }));
      setSeries((previous) => {
        const added = clusterMetrics.series
          .map((s) => ({ t: Date.parse(s.time) / 1000, cpu: s.cpuCores, memory: s.memoryBytes }))
          .filter((s) => s.t > (previous.at(-1)?.t ?? 0));
        return added.length ? [...previous, ...added] : previous;
      });
      onSample();
    },
  );
  const cpu: Sample[] = useMemo(() => series.map((s) => ({ t: s.t, value: s.cpu })), [series]);
  const memory: Sample[] = useMemo(() => series.map((s) => ({ t: s.t, value: s.memory })), [series]);
  return (
    <section aria-labelledby="usage-title">
      <h2 id="usage-title">Usage</h2>
      <fieldset class="scope">
        <legend>Nodes</legend>
        {(['WORKERS', 'ALL'] as const).map((value) => (
          <label key={value}>
            <input type="radio" name="scope" value={value} checked={scope === value} onChange={() => onScope(value)} />{' '}
            {value === 'WORKERS' ? 'Workers' : 'All nodes'}
          </label>
        ))}
      </fieldset>
      <p class="usage-now" data-scope={usage.scope} data-nodes={usage.nodes}>
        CPU <UsageBar label="CPU in use" ratio={usage.nodes ? usage.cpuUsage : null} /> {cores(usage.coresUsed)} of{' '}
        {cores(usage.coresTotal)} cores · Memory{' '}
        <UsageBar label="Memory in use" ratio={usage.nodes ? usage.memoryUsage : null} /> {gib(usage.memoryUsedBytes)}{' '}
        of {gib(usage.memoryTotalBytes)} · {usage.nodes} nodes
        {usage.stale ? ' (stale)' : ''}
      </p>
      <div class="charts">
        <UsageChart title="CPU" unit="cores" samples={cpu} format={cores} />
        <UsageChart title="Memory" unit="bytes" samples={memory} format={gib} />
      </div>
    </section>
  );
}

function fieldOf(path: readonly string[] | null | undefined): string | undefined {
  return path?.at(-1);
}

function Pools({ cluster, mayChange, onChanged }: { cluster: Cluster; mayChange: boolean; onChanged: () => void }) {
  const offer = useCloudOffer(cluster.cloud.type, cluster.cloud.region, mayChange);
  return (
    <section aria-labelledby="pools-title">
      <h2 id="pools-title">Node pools</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Pool</th>
            <th scope="col">Role</th>
            <th scope="col">Nodes</th>
            <th scope="col">Instance type</th>
            <th scope="col">Zones</th>
            {mayChange && <th scope="col">Change</th>}
          </tr>
        </thead>
        <tbody>
          {cluster.nodePools.map((pool) => (
            <tr key={pool.name} data-pool={pool.name}>
              <th scope="row">{pool.name}</th>
              <td>{pool.role === 'CONTROL_PLANE' ? 'Control plane' : 'Worker'}</td>
              <td>{pool.count}</td>
              <td>{pool.instanceType}</td>
              <td>{pool.availabilityZones.join(', ') || '–'}</td>
              {mayChange && (
                <td>
                  <PoolForm cluster={cluster} pool={pool} onChanged={onChanged} />
                  <ZonesForm clusterId={cluster.id} pool={pool} offer={offer} onChanged={onChanged} />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {mayChange && (
        <details class="add-pool-box">
          <summary>Add a node pool</summary>
          <AddPoolForm
            clusterId={cluster.id}
            offer={offer}
            suggestedType={cluster.nodePools.find((p) => p.role === 'WORKER')?.instanceType}
            onChanged={onChanged}
          />
        </details>
      )}
      {!mayChange && <p class="muted">Your role in project {cluster.projectId} reads only: no changes offered.</p>}
    </section>
  );
}

function PoolForm({
  cluster,
  pool,
  onChanged,
}: {
  cluster: Cluster;
  pool: Cluster['nodePools'][number];
  onChanged: () => void;
}) {
  const { api } = useApp();
  const [count, setCount] = useState(String(pool.count));
  const [instanceType, setInstanceType] = useState(pool.instanceType);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [other, setOther] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string>();
  const ids = { count: `count-${pool.name}`, type: `type-${pool.name}` };
  const submit = async (event: Event) => {
    event.preventDefault();
    setDone(undefined);
    const nodes = wholeNumber(count);
    if (nodes === undefined) {
      setErrors({ count: COUNT_ERROR });
      setOther([]);
      return;
    }
    setBusy(true);
    try {
      const { updateNodePool } = await api.request(DashboardScalePoolDocument, {
        input: {
          clusterId: cluster.id,
          name: pool.name,
          count: nodes,
          ...(instanceType !== pool.instanceType ? { instanceType } : {}),
        },
      });
      const byField: Record<string, string> = {};
      const rest: string[] = [];
      for (const e of updateNodePool.userErrors) {
        const field = fieldOf(e.field);
        if (field === 'count' || field === 'instanceType') byField[field] = e.message;
        else rest.push(e.message);
      }
      setErrors(byField);
      setOther(rest);
      if (updateNodePool.cluster && updateNodePool.userErrors.length === 0) {
        setDone(`Generation ${updateNodePool.cluster.generation}: rolling out.`);
        onChanged();
      }
    } catch (failure) {
      setOther([(failure as ApiError).message]);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="pool-form" aria-label={`Change pool ${pool.name}`} onSubmit={submit}>
      <label for={ids.count}>Nodes</label>
      <input
        id={ids.count}
        name="count"
        type="number"
        inputMode="numeric"
        value={count}
        aria-invalid={errors.count ? 'true' : undefined}
        aria-describedby={errors.count ? `${ids.count}-error` : undefined}
        onInput={(event) => setCount(event.currentTarget.value)}
      />
      <label for={ids.type}>Instance type</label>
      <input
        id={ids.type}
        name="instanceType"
        value={instanceType}
        aria-invalid={errors.instanceType ? 'true' : undefined}
        aria-describedby={errors.instanceType ? `${ids.type}-error` : undefined}
        onInput={(event) => setInstanceType(event.currentTarget.value)}
      />
      <button type="submit" disabled={busy}>
        Apply
      </button>
      {errors.count && (
        <p id={`${ids.count}-error`} class="field-error" role="alert">
          {errors.count}
        </p>
      )}
      {errors.instanceType && (
        <p id={`${ids.type}-error`} class="field-error" role="alert">
          {errors.instanceType}
        </p>
      )}
      <FormErrors errors={other} />
      {done && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
    </form>
  );
}

function Nodes({ cluster }: { cluster: Cluster }) {
  return (
    <section aria-labelledby="nodes-title">
      <h2 id="nodes-title">Nodes</h2>
      {cluster.nodes.length === 0 ? (
        <p class="muted">No node has reported yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">Pool</th>
              <th scope="col">Zone</th>
              <th scope="col">Type</th>
              <th scope="col">Conditions</th>
              <th scope="col">Pods</th>
              <th scope="col">CPU</th>
              <th scope="col">Memory</th>
            </tr>
          </thead>
          <tbody>
            {cluster.nodes.map((node) => {
              const ready = node.conditions.find((c) => c.type === 'Ready');
              const troubles = node.conditions.filter((c) => c.type !== 'Ready' && c.status === 'TRUE');
              return (
                <tr key={node.name}>
                  <th scope="row">
                    {node.name}
                    {node.stale ? ' (stale)' : ''}
                  </th>
                  <td>{node.pool}</td>
                  <td>{node.zone ?? '–'}</td>
                  <td>{node.instanceType ?? '–'}</td>
                  <td>
                    {ready?.status === 'TRUE' ? 'Ready' : 'Not ready'}
                    {troubles.map((c) => `, ${c.type}`).join('')}
                  </td>
                  <td>{node.pods}</td>
                  <td>
                    <NodeUsage
                      label={`CPU of ${node.name}`}
                      ratio={node.usage.cpuUsage}
                      value={`${cores(node.usage.coresUsed)} of ${cores(node.usage.coresTotal)} cores`}
                    />
                  </td>
                  <td>
                    <NodeUsage
                      label={`Memory of ${node.name}`}
                      ratio={node.usage.memoryUsage}
                      value={`${gib(node.usage.memoryUsedBytes)} of ${gib(node.usage.memoryTotalBytes)}`}
                    />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** A node's share of CPU or memory as a bar, with the amounts under it. */
function NodeUsage({ label, ratio, value }: { label: string; ratio: number; value: string }) {
  return (
    <span class="node-usage">
      <UsageBar label={label} ratio={ratio} />
      <span class="usage-value">{value}</span>
    </span>
  );
}

function Services({ cluster }: { cluster: Cluster }) {
  return (
    <section aria-labelledby="services-title">
      <h2 id="services-title">Services</h2>
      {cluster.services.length === 0 ? (
        <p class="muted">No LoadBalancer or NodePort service reported.</p>
      ) : (
        <ul class="services">
          {cluster.services.map((s) => (
            <li key={`${s.namespace}/${s.name}`}>
              <strong>
                {s.namespace}/{s.name}
              </strong>{' '}
              <span class="muted">{s.type === 'LOAD_BALANCER' ? 'load balancer' : 'node port'}</span>{' '}
              {s.urls.length === 0
                ? '(address pending)'
                : s.urls.map((url) => (
                    <a key={url} href={url} target="_blank" rel="noopener noreferrer">
                      {url}
                    </a>
                  ))}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

const BUNDLE_STATES: Record<string, string> = {
  REQUESTED: 'Waiting for a collection slot…',
  COLLECTING: 'Collecting logs from the cluster…',
  READY: 'Ready',
  FAILED: 'Failed',
};

function Logs({ cluster, mayChange }: { cluster: Cluster; mayChange: boolean }) {
  const { api } = useApp();
  const [bundle, setBundle] = useState<LogBundleFieldsFragment>();
  const [errors, setErrors] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  useSubscription(
    LogBundleDocument,
    bundle ? { id: bundle.id } : null,
    bundle?.id ?? '',
    ({ logBundle }) => setBundle(logBundle),
    (error) => setErrors([error.message]),
  );
  const request = async () => {
    setBusy(true);
    setErrors([]);
    try {
      const { requestClusterLogs } = await api.request(RequestClusterLogsDocument, {
        input: { clusterId: cluster.id },
      });
      if (requestClusterLogs.bundle) setBundle(requestClusterLogs.bundle);
      setErrors(requestClusterLogs.userErrors.map((e) => e.message));
    } catch (failure) {
      setErrors([(failure as ApiError).message]);
    } finally {
      setBusy(false);
    }
  };
  const earlier = cluster.logBundles.filter((b) => b.id !== bundle?.id && b.status === 'READY').slice(0, 5);
  return (
    <section aria-labelledby="logs-title">
      <h2 id="logs-title">Logs</h2>
      {mayChange && (
        <button
          type="button"
          onClick={request}
          disabled={busy || bundle?.status === 'REQUESTED' || bundle?.status === 'COLLECTING'}
        >
          Download logs
        </button>
      )}
      <FormErrors errors={errors} />
      {bundle && (
        <div class="bundle" role="status" data-bundle={bundle.status}>
          <p>
            {BUNDLE_STATES[bundle.status] ?? bundle.status}
            {bundle.message ? ` ${bundle.message}` : ''}
          </p>
          {bundle.status === 'READY' && bundle.downloadUrl && (
            <a class="download" href={bundle.downloadUrl} download={bundle.fileName ?? true}>
              Download {bundle.fileName} ({formatBytes(bundle.sizeBytes)})
            </a>
          )}
        </div>
      )}
      {earlier.length > 0 && (
        <details>
          <summary>Earlier bundles ({earlier.length})</summary>
          <ul>
            {earlier.map((b) => (
              <li key={b.id}>
                {b.downloadUrl ? <a href={b.downloadUrl}>{b.fileName}</a> : b.fileName} ({formatBytes(b.sizeBytes)})
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}

/**
 * The event stream, newest first: the retained events (up to 1000) read once, then the live ones
 * from clusterEvents after the last cursor. The subscription's variables hold the last cursor
 * received, so when the connection comes back it resumes after it: no gap; a cursor already
 * shown is never shown twice.
 */
function Events({ clusterId }: { clusterId: string }) {
  const { api } = useApp();
  const [events, setEvents] = useState<ClusterEventFieldsFragment[]>([]);
  const [firstShown, setFirstShown] = useState(0);
  const [error, setError] = useState<string>();
  useEffect(() => {
    let stop: (() => void) | undefined;
    let cancelled = false;
    const seen = new Set<string>();
    setEvents([]);
    api
      .request(ClusterEventsDocument, { id: clusterId, first: 1000 })
      .then((result) => {
        if (cancelled) return;
        const retained = result.cluster?.events.nodes ?? [];
        for (const e of retained) seen.add(e.cursor);
        setEvents(retained);
        setFirstShown(Math.max(0, retained.length - EVENTS_PAGE));
        const variables = { clusterId, after: retained.at(-1)?.cursor ?? '0' };
        stop = api.subscribe(
          FollowClusterEventsDocument,
          variables,
          ({ clusterEvents: event }) => {
            variables.after = event.cursor;
            if (seen.has(event.cursor)) return;
            seen.add(event.cursor);
            setEvents((previous) => [...previous, event]);
          },
          (failure) => setError(failure.message),
        );
      })
      .catch((failure: Error) => !cancelled && setError(failure.message));
    return () => {
      cancelled = true;
      stop?.();
    };
  }, [api, clusterId]);
  const shown = events.slice(firstShown).reverse();
  return (
    <section aria-labelledby="events-title">
      <h2 id="events-title">Events</h2>
      {error && (
        <p class="notice" role="alert">
          {error}
        </p>
      )}
      <ol class="events" aria-label="Events, newest first" data-count={events.length}>
        {shown.map((e) => (
          <li key={e.cursor} data-cursor={e.cursor} class={e.severity === 'WARNING' ? 'warning' : undefined}>
            <time dateTime={e.time}>{new Date(e.time).toLocaleTimeString()}</time>{' '}
            <strong class="reason">{e.reason}</strong> <span>{e.message}</span>
            {e.object && <span class="muted"> · {e.object}</span>}
          </li>
        ))}
      </ol>
      {firstShown > 0 && (
        <button type="button" onClick={() => setFirstShown((index) => Math.max(0, index - EVENTS_PAGE))}>
          Load older ({firstShown} more)
        </button>
      )}
    </section>
  );
}
