import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

/**
 * The operators' starting point under deploy/observability/: the Grafana dashboard and the alert
 * rules, read as Grafana and Prometheus read them, every PromQL expression parsed with Prometheus'
 * own grammar (@prometheus-io/lezer-promql, what Prometheus' UI uses). That every fleetgraph_ metric
 * they use exists on a running platform's /metrics is checked by test/examples.e2e.ts.
 */
const dir = fileURLToPath(new URL('../observability/', import.meta.url));
const read = (name: string) => readFileSync(`${dir}${name}`, 'utf8');

interface Panel {
  type: string;
  title: string;
  id: number;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: { name: string; type: string }[] };
  panels: Panel[];
}
interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Grafana's variables, as a query would be sent once they are replaced. */
const resolveVariables = (expr: string) =>
  expr.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', 'fleetgraph');

/** The metric names a PromQL expression selects, or the first place it does not parse. */
function parsePromQL(expr: string): { metrics: string[]; error?: string } {
  const tree = parser.parse(expr);
  const metrics: string[] = [];
  let error: string | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError && error === undefined)
        error = `does not parse at ${node.from}: ${JSON.stringify(expr.slice(node.from, node.from + 30))}`;
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector')
        metrics.push(expr.slice(node.from, node.to));
    },
  });
  return error === undefined ? { metrics } : { metrics, error };
}

/** The names matching `fleetgraph_...` anywhere in a text (what the e2e check looks for). */
const namesIn = (text: string) => new Set(text.match(/\bfleetgraph_[a-z0-9_]+/g) ?? []);

const dashboard = JSON.parse(read('grafana-dashboard.json')) as Dashboard;
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const dashboardExprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr })));
const rules = (parse(read('alerts.yaml')) as { groups: { name: string; rules: Rule[] }[] }).groups;

describe('the Grafana dashboard', () => {
  it('should be a dashboard Grafana imports: unique panel ids, on a 24-column grid, over a chosen Prometheus', () => {
    expect(dashboard).toMatchObject({ uid: 'fleetgraph-overview', title: 'Fleetgraph' });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.map((v) => [v.name, v.type])).toEqual([
      ['datasource', 'datasource'],
      ['namespace', 'query'],
    ]);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels) {
      expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
      if (panel.type === 'row') continue;
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    }
  });

  it('should cover the gateway, subscriptions, the orchestrator, clouds, agents, NATS and every process', () => {
    const rows = panels.filter((p) => p.type === 'row').map((p) => p.title);
    expect(rows).toEqual([
      'Gateway',
      'Subscriptions',
      'Orchestrator and clouds',
      'Agents and health',
      'NATS',
      'Processes',
    ]);
    const used = namesIn(JSON.stringify(dashboard));
    for (const metric of [
      'fleetgraph_gateway_operation_duration_seconds_count',
      'fleetgraph_gateway_subgraph_request_duration_seconds_bucket',
      'fleetgraph_orchestrator_phase_failures_total',
      'fleetgraph_health_clusters_failing',
      'fleetgraph_cloud_call_duration_seconds_bucket',
      'fleetgraph_nats_request_duration_seconds_bucket',
    ])
      expect(used).toContain(metric);
  });

  it.each(dashboardExprs)('should query in PromQL that parses: $where', ({ expr }) => {
    expect(parsePromQL(resolveVariables(expr)).error).toBeUndefined();
  });
});

describe('the alert rules', () => {
  const all = rules.flatMap((g) => g.rules.map((rule) => ({ group: g.name, rule })));

  it('should be a Prometheus rules file: named groups of alerts with a severity, a summary and durations', () => {
    expect(rules.length).toBeGreaterThan(0);
    expect(new Set(rules.map((g) => g.name)).size).toBe(rules.length);
    const names = all.map(({ rule }) => rule.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const { group, rule } of all) {
      const where = `${group}: ${rule.alert}`;
      for (const key of ['alert', 'expr', 'labels', 'annotations']) expect(rule, where).toHaveProperty(key);
      expect(rule.alert, where).toMatch(/^Fleetgraph[A-Z][A-Za-z0-9]+$/);
      expect(['critical', 'warning', 'info'], where).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, where).toBeTruthy();
      if (rule.for !== undefined) expect(rule.for, where).toMatch(/^\d+[smh]$/);
      for (const key of Object.keys(rule))
        expect(['alert', 'expr', 'for', 'labels', 'annotations'], where).toContain(key);
    }
  });

  it('should alert on gateway errors and latency, orchestrator failures by code, missing heartbeats and NATS consumer lag', () => {
    const byName = new Map(all.map(({ rule }) => [rule.alert, rule.expr]));
    expect(byName.get('FleetgraphGatewayErrorRate')).toContain('fleetgraph_gateway_operation_duration_seconds_count');
    expect(byName.get('FleetgraphGatewayLatencyHigh')).toContain(
      'fleetgraph_gateway_operation_duration_seconds_bucket',
    );
    expect(byName.get('FleetgraphOrchestratorFailures')).toMatch(
      /sum by \(code\).*fleetgraph_orchestrator_phase_failures_total/s,
    );
    expect(byName.get('FleetgraphAgentHeartbeatsMissing')).toContain(
      'fleetgraph_health_clusters_failing{factor="HEARTBEAT"}',
    );
    // prometheus-nats-exporter's name (-jsz=all): an assumption, documented in deploy/observability/README.md.
    expect(byName.get('FleetgraphNatsConsumerLag')).toContain('jetstream_consumer_num_pending');
  });

  it.each(all.map(({ rule }) => [rule.alert, rule.expr]))('should parse the PromQL of %s', (_alert, expr) => {
    expect(parsePromQL(expr).error).toBeUndefined();
  });
});

describe('the metric names used', () => {
  it('should be every fleetgraph_ name the e2e check finds in the files, selected in the expressions', () => {
    const parsed = new Set(
      [...dashboardExprs.map((e) => resolveVariables(e.expr)), ...rules.flatMap((g) => g.rules.map((r) => r.expr))]
        .flatMap((expr) => parsePromQL(expr).metrics)
        .filter((name) => name.startsWith('fleetgraph_')),
    );
    const found = new Set([...namesIn(read('grafana-dashboard.json')), ...namesIn(read('alerts.yaml'))]);
    expect([...found].sort()).toEqual([...parsed].sort());
  });

  it('should find a broken expression, so that the checks above can fail', () => {
    expect(parsePromQL('sum(rate(fleetgraph_x_total[5m])').error).toBeDefined();
    expect(parsePromQL('rate(fleetgraph_x_total[5m]) > 1').metrics).toEqual(['fleetgraph_x_total']);
  });
});

describe('the PodMonitor', () => {
  it("should scrape /metrics on the http port of every Fleetgraph pod but the gateway, and the gateway's on its metrics port", () => {
    const [others, gateway] = parseAllDocuments(read('pod-monitor.yaml')).map((d) => d.toJS());
    expect(others).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      spec: {
        selector: {
          matchLabels: { 'app.kubernetes.io/part-of': 'fleetgraph' },
          matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'NotIn', values: ['gateway'] }],
        },
        podMetricsEndpoints: [{ port: 'http', path: '/metrics' }],
      },
    });
    expect(gateway).toMatchObject({
      kind: 'PodMonitor',
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': 'gateway' } },
        podMetricsEndpoints: [{ port: 'metrics', path: '/metrics' }],
      },
    });
  });
});
