import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import AxeBuilder from '@axe-core/playwright';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUBGRAPHS, subgraphUrlVariable } from '@fleetgraph/kit';
import {
  postGraphQL,
  seed,
  startPlatform,
  startProcess,
  startTcpProxy,
  type Platform,
  type ServiceProcess,
  type TcpProxy,
} from './src/index.js';
import { startFakeOidcProvider, type FakeOidcProvider } from './src/oidc-provider.js';
import { localCloudAdmin } from '@fleetgraph/local-cloud';

/**
 * The web dashboard (services/dashboard) in a real Chromium (Debian's, driven by playwright-core)
 * against a real platform: what a user sees and does, page by page. The browser reaches the
 * gateway through a TCP proxy the test can cut, as a network drop would. A second gateway on the
 * same platform signs users in with an identity provider (a fake one in the test: the
 * authorization code flow with PKCE) and runs trusted documents only (TRUSTED_DOCUMENTS=enforce).
 */

const root = fileURLToPath(new URL('../', import.meta.url));
/** Screenshots of every run (the test's output folder, ignored by git). */
const OUTPUT = join(root, '.vitest', 'dashboard');
/** `DASHBOARD_SCREENSHOTS=1`: also refresh the screenshots committed beside the dashboard's README. */
const README_SHOTS =
  process.env.DASHBOARD_SCREENSHOTS === '1' ? join(root, 'services', 'dashboard', 'screenshots') : '';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const CREATE_PROFILE = `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } userErrors { message } } }`;
const CREATE_CLUSTER = `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id } userErrors { message } } }`;
const EVENTS = `query($id: ID!) { cluster(id: $id) { events(first: 1000) { nodes { cursor } } } }`;
const SCALE = `mutation($input: UpdateNodePoolInput!) { updateNodePool(input: $input) { userErrors { message } } }`;
/** The identity provider's claims that the OIDC gateway maps to the tenant and the project roles. */
const TENANT_CLAIM = 'https://fleet.example.com/tenant';
const OIDC_CLIENT_ID = 'fleetgraph-dashboard';

/** Waits for every promise; then throws the first failure, if any. */
async function settled(...promises: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((o) => o.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The base64url SHA-256 of a PKCE code verifier: its S256 code challenge (RFC 7636). */
const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the web dashboard in Chromium', () => {
  let platform: Platform;
  let browser: Browser;
  let proxy: TcpProxy;
  let context: BrowserContext;
  let page: Page;
  const tenant = seed.tenant();
  const project = seed.project();
  let admin: string;
  let editor: string;
  let viewer: string;
  let profileId: string;
  let clusterId: string;
  const clusterName = 'web-1';
  /** Console errors and uncaught exceptions, with the time they came. */
  const consoleErrors: { at: number; text: string }[] = [];
  /** While the proxy is down, failed requests are expected (the browser logs them as errors). */
  const dropWindow = { from: 0, to: 0 };
  /** The identity provider, and a gateway that signs in with it and runs trusted documents only. */
  let idp: FakeOidcProvider;
  let oidcGateway: ServiceProcess;
  /** The OIDC gateway's origin, where the browser opens the dashboard. */
  let oidcOrigin: string;
  /** The provider's user: the claims map to a tenant and a project of their own. */
  const oidcTenant = seed.tenant();
  const oidcProject = seed.project();
  const oidcClusterName = 'sso-1';

  const watch = (p: Page) => {
    p.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push({ at: Date.now(), text: message.text() });
    });
    p.on('pageerror', (error) => consoleErrors.push({ at: Date.now(), text: `uncaught: ${error.message}` }));
  };

  /** axe-core on the page as it is: no serious or critical violation. */
  async function expectAccessible(p: Page, name: string) {
    const results = await new AxeBuilder({ page: p }).analyze();
    const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(
      bad.map((v) => `${name}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    ).toEqual([]);
  }

  async function screenshot(p: Page, name: string) {
    await p.screenshot({ path: join(OUTPUT, `${name}.png`), fullPage: true });
    if (README_SHOTS) {
      await mkdir(README_SHOTS, { recursive: true });
      await copyFile(join(OUTPUT, `${name}.png`), join(README_SHOTS, `${name}.png`));
    }
  }

  async function signIn(p: Page, token: string) {
    await p.goto(`${proxy.origin}/`);
    await p.getByLabel('Bearer token or API key').fill(token);
    await p.getByRole('button', { name: 'Sign in', exact: true }).click();
    await p.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
  }

  /** The cursors of the events on the cluster page, top (newest) first. */
  const shownCursors = (p: Page) =>
    p.locator('ol.events li').evaluateAll((items) => items.map((i) => i.getAttribute('data-cursor') ?? ''));

  beforeAll(async () => {
    await mkdir(OUTPUT, { recursive: true });
    // Started side by side; each kept as it starts, so that afterAll stops it whatever else failed.
    await settled(
      startPlatform({
        // Slow enough that a cluster's milestones take a few seconds, fast enough for the suite.
        localCloud: { speed: 30, vcpuLimit: 64 },
        env: { AGENT_REPORT_INTERVAL_MS: '1000' },
      }).then((started) => (platform = started)),
      startFakeOidcProvider({
        audience: 'fleetgraph-api',
        user: { sub: 'ada@example.com', [TENANT_CLAIM]: oidcTenant, groups: ['everyone', `${oidcProject}:editor`] },
      }).then((started) => (idp = started)),
    );
    await settled(
      startTcpProxy(new URL(platform.gatewayUrl)).then((started) => (proxy = started)),
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS }).then((started) => (browser = started)),
      // A second gateway on the same subgraphs: OIDC sign-in for the dashboard, trusted documents only.
      platform
        .envFor('gateway')
        .then((env) =>
          startProcess('gateway-oidc', join(root, 'gateway', 'dist', 'main.js'), {
            ...env,
            ...Object.fromEntries(
              SUBGRAPHS.map((s) => [subgraphUrlVariable(s.name), platform.services.get(s.name)!.url]),
            ),
            PORT: '0',
            AUTH_ISSUER: idp.issuer,
            AUTH_JWKS_URL: idp.jwksUrl,
            AUTH_AUDIENCE: idp.audience,
            AUTH_CLAIM_TENANT: TENANT_CLAIM,
            AUTH_CLAIM_PROJECTS: 'groups',
            DASHBOARD_OIDC_CLIENT_ID: OIDC_CLIENT_ID,
            TRUSTED_DOCUMENTS: 'enforce',
          }),
        )
        .then((started) => (oidcGateway = started)),
    );
    oidcOrigin = new URL(oidcGateway.url).origin;
    idp.registerClient(OIDC_CLIENT_ID, `${oidcOrigin}/auth/callback`);
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    watch(page);
    admin = await platform.token(seed.user(tenant, { [project]: 'admin' }));
    editor = await platform.token(seed.user(tenant, { [project]: 'editor' }));
    viewer = await platform.token(seed.user(tenant, { [project]: 'viewer' }));
    const profile = await platform.graphql(CREATE_PROFILE, { input: seed.profileInput(project) }, admin);
    profileId = profile.data!.createClusterProfile.profile.id;
    // The identity provider's user's cluster, created now (through the first gateway: these
    // operations are not the dashboard's trusted documents) so that it runs when its tests come.
    const oidcAdmin = await platform.token(seed.user(oidcTenant, { [oidcProject]: 'admin' }));
    const oidcProfile = await platform.graphql(CREATE_PROFILE, { input: seed.profileInput(oidcProject) }, oidcAdmin);
    const oidcCluster = await platform.graphql(
      CREATE_CLUSTER,
      { input: seed.clusterInput(oidcProject, oidcClusterName, oidcProfile.data!.createClusterProfile.profile.id) },
      oidcAdmin,
    );
    expect(oidcCluster.data!.createCluster.userErrors).toEqual([]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    proxy?.close();
    await oidcGateway?.stop();
    await platform?.stop();
    await idp?.close();
  });

  it('should be served by the gateway at / within its JavaScript budget, with client routes falling back to the page', async () => {
    const assets = join(root, 'services', 'dashboard', 'dist', 'assets');
    let gzipped = 0;
    for (const file of await readdir(assets))
      if (file.endsWith('.js')) gzipped += gzipSync(await readFile(join(assets, file))).length;
    console.log(`dashboard JavaScript: ${(gzipped / 1024).toFixed(1)} KB gzipped`);
    expect(gzipped).toBeLessThan(300 * 1024);

    const index = await fetch(`${proxy.origin}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const html = await index.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    const asset = await fetch(`${proxy.origin}${script}`);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    const route = await fetch(`${proxy.origin}/clusters/anything`, { headers: { accept: 'text/html' } });
    expect(await route.text()).toBe(html);
    // The gateway's own paths are not shadowed.
    expect((await fetch(`${proxy.origin}/healthz`)).headers.get('content-type')).toContain('application/json');
    expect((await fetch(`${proxy.origin}/assets/missing.js`)).status).toBe(404);
  });

  it('should sign in with a pasted token, kept in sessionStorage only', async () => {
    await page.goto(`${proxy.origin}/`);
    await page.getByRole('heading', { name: 'Sign in to Fleetgraph' }).waitFor();
    const firstPaint = await page.evaluate(
      () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? Number.NaN,
    );
    console.log(`sign-in page first contentful paint: ${firstPaint.toFixed(0)} ms`);
    await page.getByText('pnpm token --tenant acme --project web=admin').waitFor();
    await expectAccessible(page, 'sign-in');
    await screenshot(page, 'sign-in');

    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByText('Paste a token.').waitFor();
    await signIn(page, admin);
    const stored = await page.evaluate('[sessionStorage.length, localStorage.length]');
    expect(stored).toEqual([1, 0]);
  });

  it('should show a cluster created through the API on the overview, live', async () => {
    await page.getByText('0 of 0 clusters').waitFor();
    // Live through the fleet subscriptions: the list is not read again.
    const listReads: string[] = [];
    const countListReads = (request: { postData(): string | null }) => {
      if (/"operationName":"DashboardFleet"/.test(request.postData() ?? '')) listReads.push('read');
    };
    page.on('request', countListReads);
    const created = await platform.graphql(
      CREATE_CLUSTER,
      { input: seed.clusterInput(project, clusterName, profileId, 2) },
      admin,
    );
    clusterId = created.data!.createCluster.cluster.id;
    const createdAt = Date.now();
    const row = page.locator(`tr[data-cluster="${clusterName}"]`);
    await row.waitFor();
    console.log(`the new cluster appeared on the overview after ${Date.now() - createdAt} ms`);
    await expect(row.locator('[data-phase]').getAttribute('data-phase')).resolves.toMatch(
      /PENDING|PROVISIONING|RUNNING/,
    );
    await until(
      'the row to advance past PENDING',
      async () => (await row.locator('[data-phase]').getAttribute('data-phase')) !== 'PENDING',
      30_000,
    );
    page.off('request', countListReads);
    expect(listReads).toEqual([]);
    await expectAccessible(page, 'overview');
  });

  it("should show the cluster's milestones advance and its events arrive without reloading", async () => {
    await page.evaluate('window.__sameDocument = true');
    // By keyboard: the row's link, followed with Enter.
    await page.getByRole('link', { name: clusterName }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: clusterName }).waitFor();
    await page.locator('ol.timeline, section[aria-labelledby="milestones-title"] p').first().waitFor();
    const firstCount = Number(await page.locator('ol.events').getAttribute('data-count'));
    const firstPhase = await page.locator('.cluster-head [data-phase]').getAttribute('data-phase');
    expect(firstPhase).not.toBe('RUNNING');
    // Milestones advance until the cluster runs, on this page as it is.
    const states = new Set<string>();
    await until(
      'the cluster to run',
      async () => {
        const active = await page.locator('.milestone.active strong').allTextContents();
        for (const a of active) states.add(a);
        return (await page.locator('.cluster-head [data-phase]').getAttribute('data-phase')) === 'RUNNING';
      },
      60_000,
    );
    console.log(`milestones seen active: ${[...states].join(', ')}`);
    expect(await page.locator('.milestone').count()).toBeGreaterThan(3);
    expect(await page.locator('.milestone.done').count()).toBe(await page.locator('.milestone').count());
    expect(Number(await page.locator('ol.events').getAttribute('data-count'))).toBeGreaterThan(firstCount);
    await page.locator('ol.events li .reason', { hasText: 'PhaseRunning' }).first().waitFor();
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
    // The newest event is at the top.
    const cursors = await shownCursors(page);
    expect(cursors.map(Number)).toEqual([...cursors.map(Number)].sort((a, b) => b - a));
  });

  it("should show the running cluster's health and usage on the overview, live", async () => {
    await page.getByRole('link', { name: 'Fleet' }).first().click();
    const row = page.locator(`tr[data-cluster="${clusterName}"]`);
    await row.waitFor();
    await until(
      'the row to show the health and CPU use its agent reports',
      async () =>
        (await row.locator('[data-health]').getAttribute('data-health')) === 'HEALTHY' &&
        Number(await row.locator('meter').first().getAttribute('value')) > 0,
      30_000,
    );
    expect(await row.locator('[data-phase]').getAttribute('data-phase')).toBe('RUNNING');
    await page.getByRole('link', { name: clusterName }).click();
    await page.getByRole('heading', { level: 1, name: clusterName }).waitFor();
  });

  it('should extend the usage charts live from clusterMetrics', async () => {
    const cpu = page.locator('figure.chart').first();
    const before = Number(await cpu.getAttribute('data-points'));
    await until('a new sample', async () => Number(await cpu.getAttribute('data-points')) > before + 1, 20_000);
    await page.locator('section[aria-labelledby="nodes-title"] tbody tr').first().waitFor();
    await expectAccessible(page, 'cluster');
    await screenshot(page, 'cluster');
  });

  it("should switch the usage charts between worker nodes and all nodes, and show each node's CPU and memory", async () => {
    const now = (scope: string, nodes: number) =>
      page.locator(`.usage-now[data-scope="${scope}"][data-nodes="${nodes}"]`);
    const cpu = page.locator('figure.chart').first();
    await now('WORKERS', 2).waitFor();
    // By keyboard: the radio group, then the arrow key to "All nodes".
    await page.getByRole('radio', { name: 'Workers' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('radio', { name: 'All nodes' }).isChecked()).toBe(true);
    // Control plane and workers: three nodes, their series from the query, then extended live.
    await now('ALL', 3).waitFor();
    const allPoints = await until('the series of all nodes', async () => {
      const points = Number(await cpu.getAttribute('data-points'));
      return points > 0 && points;
    });
    await until('a new sample of all nodes', async () => Number(await cpu.getAttribute('data-points')) > allPoints);
    await page.getByRole('radio', { name: 'Workers' }).check();
    await now('WORKERS', 2).waitFor();

    // Each node: CPU and memory as a bar and as amounts.
    const rows = page.locator('section[aria-labelledby="nodes-title"] tbody tr');
    await until('the nodes to report usage', async () => (await rows.count()) === 3);
    for (const row of await rows.all()) {
      const name = (await row.locator('th').textContent())!.replace(' (stale)', '');
      await expect(row.getByRole('meter', { name: `CPU of ${name}` }).count()).resolves.toBe(1);
      await expect(row.getByRole('meter', { name: `Memory of ${name}` }).count()).resolves.toBe(1);
      await expect(row.textContent()).resolves.toMatch(
        /\d+\.\d+ of \d+\.\d+ cores.*\d+(\.\d)? [KMG]iB of \d+(\.\d)? [KMG]iB/,
      );
    }
  });

  it('should scale a pool from the page, with userErrors at the field and the generation and events changing', async () => {
    const form = page.getByRole('form', { name: 'Change pool workers' });
    // An emptied field is refused on the page, not sent as 0 nodes.
    await form.getByLabel('Nodes').fill('');
    await form.getByRole('button', { name: 'Apply' }).click();
    await form.locator('#count-workers-error', { hasText: 'whole number' }).waitFor();
    expect(await page.locator('[data-testid="generation"]').textContent()).toMatch(/generation 1\b/);
    await form.getByLabel('Nodes').fill('500');
    await form.getByRole('button', { name: 'Apply' }).click();
    await form.locator('#count-workers-error').waitFor();
    expect(await form.getByLabel('Nodes').getAttribute('aria-invalid')).toBe('true');

    const eventsBefore = Number(await page.locator('ol.events').getAttribute('data-count'));
    await form.getByLabel('Nodes').fill('3');
    await form.getByRole('button', { name: 'Apply' }).click();
    await page.locator('[data-testid="generation"]', { hasText: 'generation 2' }).waitFor();
    await page.locator('tr[data-pool="workers"] td', { hasText: /^3$/ }).first().waitFor();
    await until(
      'events of the scale-up',
      async () => Number(await page.locator('ol.events').getAttribute('data-count')) > eventsBefore,
    );
    await page.locator('[data-testid="generation"]', { hasText: 'converged to 2' }).waitFor({ timeout: 60_000 });
  });

  it('should collect logs with live progress, then offer the archive', async () => {
    await page.getByRole('button', { name: 'Download logs' }).click();
    const link = page.locator('a.download');
    await link.waitFor({ timeout: 60_000 });
    const href = await link.getAttribute('href');
    const archive = await fetch(new URL(href!, proxy.origin));
    expect(archive.status).toBe(200);
    expect(
      Buffer.from(await archive.arrayBuffer())
        .subarray(0, 2)
        .toString(),
    ).toBe('PK');
  });

  it('should show a banner when the live connection drops, and resume the events after their cursor without gap or duplicate', async () => {
    dropWindow.from = Date.now();
    proxy.drop();
    await page.getByText('Live connection lost').waitFor({ timeout: 30_000 });
    // Events happen while the page is away.
    expect(
      (await platform.graphql(SCALE, { input: { clusterId, name: 'workers', count: 2 } }, admin)).data,
    ).toBeTruthy();
    await new Promise((r) => setTimeout(r, 1_500));
    proxy.restore();
    await page.getByText('Live connection restored').waitFor({ timeout: 30_000 });
    dropWindow.to = Date.now();
    await page.locator('[data-testid="generation"]', { hasText: 'generation 3' }).waitFor();
    await page.locator('[data-testid="generation"]', { hasText: 'converged to 3' }).waitFor({ timeout: 60_000 });
    // Every event the API holds, in order, with no duplicate: the page shows the newest of them.
    const truth = await until('the events to settle', async () => {
      const api = (await platform.graphql(EVENTS, { id: clusterId }, admin)).data!.cluster.events.nodes.map(
        (n: { cursor: string }) => n.cursor,
      );
      const shown = await shownCursors(page);
      return shown[0] === api.at(-1) ? api : null;
    });
    const shown = await shownCursors(page);
    expect(new Set(shown).size).toBe(shown.length);
    expect([...shown].reverse()).toEqual(truth.slice(truth.length - shown.length));
  });

  it('should list profiles and create a version, with errors at the field', async () => {
    await page.getByRole('link', { name: 'Profiles' }).click();
    await page.getByRole('heading', { level: 1, name: 'Profiles' }).waitFor();
    await page.getByRole('button', { name: 'New version of web 1.0.0' }).click();
    await page.getByLabel('Version', { exact: true }).first().fill('not-a-version');
    await page.getByRole('button', { name: 'Create version' }).click();
    await page.locator('#version-error').waitFor();
    await expectAccessible(page, 'profiles');
    await screenshot(page, 'profiles');
    await page.getByLabel('Version', { exact: true }).first().fill('1.1.0');
    await page.getByRole('button', { name: 'Create version' }).click();
    await page.getByRole('rowheader', { name: '1.1.0' }).waitFor();
  });

  it('should let an editor add a node pool, then zones to it, with userErrors at the field and the generation changing', async () => {
    const editorContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const editorPage = await editorContext.newPage();
    watch(editorPage);
    await signIn(editorPage, editor);
    await editorPage.getByRole('link', { name: clusterName }).click();
    await editorPage.getByRole('heading', { level: 1, name: clusterName }).waitFor();
    await editorPage.locator('[data-testid="generation"]', { hasText: 'generation 3' }).waitFor();

    // The form opens by keyboard; its instance types and zones are those of the cluster's region.
    await editorPage.locator('summary', { hasText: 'Add a node pool' }).focus();
    await editorPage.keyboard.press('Enter');
    const form = editorPage.getByRole('form', { name: 'Add a node pool' });
    const type = form.getByLabel('Instance type');
    await until('the instance types', async () => (await type.isEnabled()) && (await type.inputValue()) === 'm5.large');
    expect(await type.locator('option').allTextContents()).toContain('t3.medium (2 vCPU, 4 GiB)');
    expect(await form.getByRole('checkbox').evaluateAll((boxes) => boxes.map((b) => b.getAttribute('value')))).toEqual([
      'local-1a',
      'local-1b',
      'local-1c',
    ]);

    // The API's userErrors, at their field.
    await form.getByLabel('Name').fill('Extra_Pool');
    await form.getByLabel('Nodes').fill('-1');
    await form.getByRole('button', { name: 'Add pool' }).click();
    await form.locator('#add-pool-name-error').waitFor();
    await form.locator('#add-pool-count-error').waitFor();
    expect(await form.getByLabel('Name').getAttribute('aria-invalid')).toBe('true');
    expect(await form.getByLabel('Nodes').getAttribute('aria-invalid')).toBe('true');
    await form.getByLabel('Name').fill('workers');
    await form.getByLabel('Nodes').fill('1');
    await form.getByRole('button', { name: 'Add pool' }).click();
    await form.locator('#add-pool-name-error', { hasText: 'exists already' }).waitFor();
    expect(await form.locator('#add-pool-count-error').count()).toBe(0);
    await expectAccessible(editorPage, 'cluster, adding a pool');

    await form.getByLabel('Name').fill('extra');
    await type.selectOption('t3.medium');
    await form.getByRole('checkbox', { name: 'local-1a' }).check();
    await form.getByRole('button', { name: 'Add pool' }).click();
    await form.getByRole('status').filter({ hasText: 'Pool extra added: generation 4' }).waitFor();
    const extra = editorPage.locator('tr[data-pool="extra"]');
    await extra.waitFor();
    expect(await extra.locator('td').allTextContents()).toEqual(
      expect.arrayContaining(['Worker', '1', 't3.medium', 'local-1a']),
    );
    await editorPage.locator('[data-testid="generation"]', { hasText: 'generation 4' }).waitFor();
    expect(await form.getByLabel('Name').inputValue()).toBe('');

    // Zones: only those the pool does not use are offered; the pool keeps its own.
    const zones = editorPage.getByRole('form', { name: 'Add zones to pool extra' });
    expect(await zones.getByRole('checkbox').evaluateAll((boxes) => boxes.map((b) => b.getAttribute('value')))).toEqual(
      ['local-1b', 'local-1c'],
    );
    expect(await editorPage.getByRole('form', { name: 'Add zones to pool workers' }).count()).toBe(0);
    await zones.getByRole('checkbox', { name: 'local-1b' }).check();
    await expectAccessible(editorPage, 'cluster, adding zones');
    await editorPage.screenshot({ path: join(OUTPUT, 'cluster-editor.png'), fullPage: true });
    await zones.getByRole('button', { name: 'Add zones' }).click();
    await extra.locator('td', { hasText: /^local-1a, local-1b$/ }).waitFor();
    await editorPage.locator('[data-testid="generation"]', { hasText: 'generation 5' }).waitFor();
    await editorPage.locator('[data-testid="generation"]', { hasText: 'converged to 5' }).waitFor({ timeout: 90_000 });
    await editorPage
      .locator('section[aria-labelledby="nodes-title"] tbody tr', {
        has: editorPage.locator('td', { hasText: /^extra$/ }),
      })
      .first()
      .waitFor();

    // An editor sees the profile's newer version, and is not offered to apply it (that needs an admin).
    await editorPage.locator('tr[data-update="1.1.0"]').waitFor();
    await editorPage.getByText('Applying an update needs the admin role').waitFor();
    expect(await editorPage.getByRole('button', { name: /^Apply \d/ }).count()).toBe(0);
    await editorContext.close();
  }, 180_000);

  it("should show an admin the profile's newer versions, newest first, and apply one with userErrors in its row", async () => {
    const layers = seed
      .profileInput(project)
      .layers.map((l) => (l.name === 'prometheus' ? { ...l, version: '2.54.1' } : l));
    for (const input of [
      { version: '1.2.0', description: 'Prometheus 2.54', layers },
      // Made for another cloud: listed (it is a newer version), refused when applied.
      { version: '1.3.0', cloud: 'AWS', layers },
    ]) {
      const created = await platform.graphql(CREATE_PROFILE, { input: seed.profileInput(project, input) }, admin);
      expect(created.data!.createClusterProfile.userErrors).toEqual([]);
    }
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Fleet', exact: true }).click();
    await page.getByRole('link', { name: clusterName }).click();
    await page.getByRole('heading', { level: 1, name: clusterName }).waitFor();
    const versions = () =>
      page.locator('tr[data-update]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-update')));
    await until('the newer versions', async () => (await versions()).length === 3);
    expect(await versions()).toEqual(['1.3.0', '1.2.0', '1.1.0']);
    await page.locator('tr[data-update="1.2.0"]', { hasText: 'prometheus 2.53.0 → 2.54.1' }).waitFor();

    await page.getByRole('button', { name: 'Apply 1.3.0' }).click();
    const refused = page.locator('tr[data-update="1.3.0"] [role="alert"]');
    await refused.filter({ hasText: 'made for AWS' }).waitFor();
    expect(await page.getByRole('button', { name: 'Apply 1.3.0' }).getAttribute('aria-describedby')).toBe(
      await refused.getAttribute('id'),
    );
    await expectAccessible(page, 'cluster, profile updates');
    await page.screenshot({ path: join(OUTPUT, 'cluster-updates.png'), fullPage: true });

    const generation = page.locator('[data-testid="generation"]');
    const before = Number(/generation (\d+)/.exec((await generation.textContent())!)![1]);
    await page.getByRole('button', { name: 'Apply 1.2.0' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Applying web 1.2.0: generation ${before + 1}` })
      .waitFor();
    await page.locator('.cluster-head', { hasText: 'profile web 1.2.0' }).waitFor();
    await generation.filter({ hasText: `generation ${before + 1}` }).waitFor();
    // Only versions newer than the one applied are left.
    await until('the applied versions to leave the list', async () => (await versions()).join() === '1.3.0');
    await generation.filter({ hasText: `converged to ${before + 1}` }).waitFor({ timeout: 90_000 });
  }, 180_000);

  it("should show a failed milestone with the cloud's message, its attempts and when it is tried next", async () => {
    const cloud = localCloudAdmin(platform.env.LOCAL_CLOUD_URL!);
    const { vcpuUsed } = await cloud.quota('local-1');
    // Room for the control plane (2 vCPUs) only: the workers fail on the vCPU quota, and keep being retried.
    await cloud.setQuota(vcpuUsed + 2, 'local-1');
    try {
      const created = await platform.graphql(
        CREATE_CLUSTER,
        { input: seed.clusterInput(project, 'short-of-vcpus', profileId) },
        admin,
      );
      await page.goto(`${proxy.origin}/clusters/${created.data!.createCluster.cluster.id}`);
      const failed = page.locator('.milestone[data-state="failed"]');
      await failed.locator('[data-next-attempt]').waitFor({ timeout: 60_000 });
      expect(await failed.locator('strong').textContent()).toBe('Adding Worker Nodes');
      expect(await failed.textContent()).toMatch(/vCPU.*QUOTA_EXCEEDED, \d+ failed attempts?; next try /s);
      const next = Date.parse((await failed.locator('[data-next-attempt]').getAttribute('data-next-attempt'))!);
      expect(next).toBeGreaterThan(Date.now() - 60_000);
      await expectAccessible(page, 'cluster-failed');
    } finally {
      await cloud.setQuota(256, 'local-1');
    }
  });

  it('should offer a viewer no day-2 action', async () => {
    const viewerContext = await browser.newContext();
    const viewerPage = await viewerContext.newPage();
    watch(viewerPage);
    await signIn(viewerPage, viewer);
    await viewerPage.getByRole('link', { name: clusterName }).click();
    await viewerPage.getByRole('heading', { level: 1, name: clusterName }).waitFor();
    await viewerPage.getByText('reads only').waitFor();
    expect(await viewerPage.getByRole('button', { name: 'Apply' }).count()).toBe(0);
    expect(await viewerPage.getByRole('button', { name: 'Download logs' }).count()).toBe(0);
    // No pool or zone form, and the profile's newer version without a button to apply it.
    await viewerPage.locator('tr[data-update="1.3.0"]').waitFor();
    await viewerPage.getByText('Applying an update needs the admin role').waitFor();
    expect(await viewerPage.getByRole('form').count()).toBe(0);
    expect(await viewerPage.getByText('Add a node pool').count()).toBe(0);
    const buttons = await viewerPage.getByRole('button').allTextContents();
    expect(buttons.filter((b) => /Apply|Add|Download/.test(b))).toEqual([]);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Fleet', exact: true }).click();
    await page.locator(`tr[data-cluster="${clusterName}"] [data-phase="RUNNING"]`).waitFor();
    await screenshot(page, 'overview');
    await viewerContext.close();
  });

  describe('signed in with the identity provider, against a gateway that runs trusted documents only', () => {
    let oidcContext: BrowserContext;
    let oidcPage: Page;
    /** Every GraphQL error the OIDC page received, over HTTP and graphql-ws. */
    const graphqlErrors: string[] = [];
    /** How many answers were read, so that an empty list of errors means something. */
    const answers = { http: 0, ws: 0 };
    const reading: Promise<void>[] = [];

    /** Records the GraphQL errors of every answer the page gets from the gateway. */
    const recordGraphQLErrors = (p: Page) => {
      p.on('response', (response) => {
        if (new URL(response.url()).pathname !== '/graphql') return;
        reading.push(
          response.text().then(
            (text) => {
              answers.http++;
              const errors = (JSON.parse(text) as { errors?: { message: string }[] }).errors ?? [];
              for (const e of errors) graphqlErrors.push(`HTTP ${response.status()}: ${e.message}`);
            },
            (error: Error) => {
              graphqlErrors.push(`HTTP ${response.status()}: unreadable answer (${error.message})`);
            },
          ),
        );
      });
      p.on('websocket', (socket) =>
        socket.on('framereceived', ({ payload }) => {
          const message = JSON.parse(String(payload)) as { type: string; payload?: unknown };
          if (message.type === 'next') answers.ws++;
          const errors =
            message.type === 'error'
              ? (message.payload as { message: string }[])
              : message.type === 'next'
                ? ((message.payload as { errors?: { message: string }[] }).errors ?? [])
                : [];
          for (const e of errors) graphqlErrors.push(`graphql-ws ${message.type}: ${e.message}`);
        }),
      );
    };

    const signInButton = (p: Page) => p.getByRole('button', { name: `Sign in with ${new URL(idp.issuer).host}` });

    afterAll(async () => {
      await oidcContext?.close();
    });

    it("should sign in with the identity provider (authorization code with PKCE), show the user's fleet, and keep the token in sessionStorage only", async () => {
      // The page may call the provider (discovery, token endpoint), and nothing else outside.
      const csp = (await fetch(`${oidcOrigin}/`, { headers: { accept: 'text/html' } })).headers.get(
        'content-security-policy',
      );
      expect(csp).toContain(`connect-src 'self' ws: wss: ${idp.origin};`);

      oidcContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      oidcPage = await oidcContext.newPage();
      watch(oidcPage);
      recordGraphQLErrors(oidcPage);
      const visited: string[] = [];
      oidcPage.on('request', (request) => {
        if (request.isNavigationRequest() && request.frame() === oidcPage.mainFrame()) visited.push(request.url());
      });
      await oidcPage.goto(`${oidcOrigin}/`);
      await signInButton(oidcPage).waitFor();
      await expectAccessible(oidcPage, 'sign-in with the identity provider');
      await signInButton(oidcPage).click();
      await oidcPage.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
      // Signed in as the provider's user, the code gone from the address bar.
      await oidcPage.getByRole('banner').getByText('ada@example.com').waitFor();
      expect(oidcPage.url()).toBe(`${oidcOrigin}/`);
      // The browser went to the provider, which sent it back to the callback with a code and the state.
      expect(visited.map((u) => new URL(u).origin + new URL(u).pathname)).toEqual([
        `${oidcOrigin}/`,
        `${idp.origin}/authorize`,
        `${oidcOrigin}/auth/callback`,
      ]);
      const callback = new URL(visited[2]!);

      // The provider checked the client and PKCE: one authorization, one exchange whose verifier matched.
      expect(idp.refusals).toEqual([]);
      expect(idp.authorizations).toHaveLength(1);
      expect(idp.exchanges).toHaveLength(1);
      const [authorization] = idp.authorizations;
      const [exchange] = idp.exchanges;
      expect(authorization).toMatchObject({
        clientId: OIDC_CLIENT_ID,
        redirectUri: `${oidcOrigin}/auth/callback`,
        scope: 'openid profile',
      });
      expect(Object.fromEntries(callback.searchParams)).toEqual({
        code: authorization!.code,
        state: authorization!.state,
      });
      expect(exchange!.codeVerifier).not.toBe(authorization!.codeChallenge);
      expect(s256(exchange!.codeVerifier)).toBe(authorization!.codeChallenge);
      // Called by the page itself (CORS), not through the gateway.
      expect(exchange!.origin).toBe(oidcOrigin);

      // The access token, in this tab's sessionStorage only: no localStorage, no cookie, no PKCE leftovers.
      expect(
        await oidcPage.evaluate(
          `({ session: Object.keys(sessionStorage), token: sessionStorage.getItem('fleetgraph.token'), local: localStorage.length })`,
        ),
      ).toEqual({ session: ['fleetgraph.token'], token: exchange!.accessToken, local: 0 });
      expect(await oidcContext.cookies()).toEqual([]);

      // The fleet of the tenant and project the claims map to: the cluster created through the API.
      await oidcPage.locator(`tr[data-cluster="${oidcClusterName}"]`).waitFor();
      await oidcPage.getByText('1 of 1 clusters').waitFor();

      // The code was good once: replayed, even with its verifier, the provider refuses it.
      const replay = await fetch(`${idp.origin}/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: exchange!.code,
          redirect_uri: authorization!.redirectUri,
          client_id: OIDC_CLIENT_ID,
          code_verifier: exchange!.codeVerifier,
        }),
      });
      expect([replay.status, ((await replay.json()) as { error: string }).error]).toEqual([400, 'invalid_grant']);
      expect(idp.exchanges).toHaveLength(1);
    });

    it('should walk the fleet, a cluster and scaling it with the trusted documents alone: no GraphQL or console error', async () => {
      // The gateway does refuse any other operation, so the walk below proves the dashboard sends only the manifest's.
      const stranger = await postGraphQL(
        oidcGateway.url,
        `query Stranger { __typename }`,
        {},
        idp.exchanges[0]!.accessToken,
      );
      expect(stranger.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_IN_LIST');

      const consoleBefore = consoleErrors.length;
      await oidcPage.getByRole('link', { name: oidcClusterName }).click();
      await oidcPage.getByRole('heading', { level: 1, name: oidcClusterName }).waitFor();
      // Created in beforeAll: running by now, unless this test runs alone.
      await oidcPage.locator('.cluster-head [data-phase="RUNNING"]').waitFor({ timeout: 90_000 });
      await oidcPage.locator('ol.events li').first().waitFor();
      await oidcPage.locator('[data-testid="generation"]', { hasText: 'generation 1' }).waitFor();
      await expectAccessible(oidcPage, 'cluster, signed in with the identity provider');
      // The provider's groups make the user an editor; the token's claims name no role the page can read, so it offers every action.
      const form = oidcPage.getByRole('form', { name: 'Change pool workers' });
      await form.getByLabel('Nodes').fill('2');
      await form.getByRole('button', { name: 'Apply' }).click();
      await oidcPage.locator('[data-testid="generation"]', { hasText: 'generation 2' }).waitFor();
      await oidcPage.locator('tr[data-pool="workers"] td', { hasText: /^2$/ }).first().waitFor();
      await oidcPage
        .getByRole('navigation', { name: 'Main' })
        .getByRole('link', { name: 'Fleet', exact: true })
        .click();
      await oidcPage.locator(`tr[data-cluster="${oidcClusterName}"]`).waitFor();
      await oidcPage.getByRole('link', { name: 'Profiles' }).click();
      await oidcPage.getByRole('rowheader', { name: '1.0.0' }).waitFor();

      await Promise.all(reading);
      expect(graphqlErrors).toEqual([]);
      expect([answers.http > 3, answers.ws > 3]).toEqual([true, true]);
      expect(consoleErrors.slice(consoleBefore).map((e) => e.text)).toEqual([]);
    });

    it('should refuse a callback whose state was tampered with, saying so, and sign nobody in', async () => {
      const tamperedContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const p = await tamperedContext.newPage();
      watch(p);
      // The provider's answer, with another state: as when a sign-in started elsewhere lands here.
      await p.route(
        (url) => url.origin === idp.origin && url.pathname === '/authorize',
        async (route) => {
          const answer = await route.fetch({ maxRedirects: 0 });
          const back = new URL(answer.headers().location!);
          back.searchParams.set('state', `${back.searchParams.get('state')}x`);
          await route.fulfill({ status: 302, headers: { location: back.href } });
        },
      );
      const exchanges = idp.exchanges.length;
      const authorizations = idp.authorizations.length;
      const refusals = idp.refusals.length;
      await p.goto(`${oidcOrigin}/`);
      await signInButton(p).click();
      await p.getByRole('alert').filter({ hasText: 'This sign-in was not started here: try again.' }).waitFor();
      expect(idp.authorizations).toHaveLength(authorizations + 1);
      // Back on the sign-in page, without the code in the address bar; the code never reached the token endpoint.
      expect(p.url()).toBe(`${oidcOrigin}/`);
      await p.getByRole('heading', { level: 1, name: 'Sign in to Fleetgraph' }).waitFor();
      expect(await p.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
      expect(await p.evaluate('[sessionStorage.length, localStorage.length]')).toEqual([0, 0]);
      expect([idp.exchanges.length, idp.refusals.length]).toEqual([exchanges, refusals]);
      await expectAccessible(p, 'sign-in, tampered callback');
      await tamperedContext.close();
    });
  });

  it('should log no error in the browser console', () => {
    const unexpected = consoleErrors.filter((e) => e.at < dropWindow.from || e.at > dropWindow.to + 500);
    expect(unexpected.map((e) => e.text)).toEqual([]);
  });
});
