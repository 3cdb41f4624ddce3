import { randomUUID } from 'node:crypto';
import { defineCounter, meterRequests, metricsHandler } from '@fleetgraph/kit/core';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { isRegion, REGIONS } from './catalog.js';
import { actions } from './ec2/dispatch.js';
import { Ec2Error, ec2Errors } from './ec2/ec2-error.js';
import { parseParams, Query, regionOfRequest } from './ec2/query.js';
import { errorXml, responseXml } from './ec2/xml.js';
import { faultPatchSchema, type Faults } from './faults.js';
import type { Simulator } from './simulator.js';
import type { CloudState } from './state.js';

export interface AppDeps {
  state: CloudState;
  sim: Simulator;
  faults: Faults;
  logger: Logger;
  /** The cloud's own URL, known once it listens. */
  endpoint: () => string;
  ready: () => Promise<void>;
}

/** EC2 requests by action (`other` for an unknown one) and EC2 error code (`ok` when answered). */
const ec2Requests = defineCounter<'action' | 'code'>({
  name: 'fleetgraph_local_cloud_ec2_requests_total',
  help: 'EC2 Query API requests the local cloud answered, by action (other for one it does not know) and EC2 error code (ok when it succeeded).',
  labelNames: ['action', 'code'],
});

const quotaPatchSchema = z.object({ vcpuLimit: z.number().int().min(0), region: z.string().optional() }).strict();

/**
 * The local cloud's HTTP surface:
 * - `POST /`: EC2's Query API (form-encoded `Action=...&Version=2016-11-15`), answered in EC2's XML;
 * - `/_admin/*`: JSON for tests and operators (faults, quota), which no real cloud has;
 * - `/healthz`, `/readyz`, `/metrics` (Prometheus: the process's, every request's duration among them).
 */
export function createApp(deps: AppDeps): express.Express {
  const { state, sim, faults, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use(meterRequests());

  app.get('/metrics', metricsHandler());
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.ready();
      res.json({ status: 'ready' });
    } catch (error) {
      res.status(503).json({ status: 'unavailable', error: String(error) });
    }
  });

  app.post('/', express.urlencoded({ extended: false, limit: '1mb' }), async (req: Request, res: Response) => {
    const requestId = randomUUID();
    const params = parseParams((req.body ?? {}) as Record<string, unknown>);
    const action = typeof params.Action === 'string' ? params.Action : '';
    res.setHeader('x-amzn-requestid', requestId);
    try {
      faults.beforeRequest(action);
      const region = regionOfRequest(req.headers.authorization);
      if (!isRegion(region)) {
        throw ec2Errors.invalidParameterValue(
          `The region '${region}' does not exist in the local cloud; its regions are ${REGIONS.join(', ')}.`,
        );
      }
      const handler = actions[action];
      if (!handler) throw ec2Errors.invalidAction(action || '(none)');
      const q = new Query(params);
      const body = await state.exclusive(async () => {
        await sim.advance();
        return handler({ state, sim, region, q, endpoint: deps.endpoint() });
      });
      sim.schedule();
      // The work is done; a lost answer is what client tokens guard against.
      if (faults.loseResponse()) throw ec2Errors.internalError();
      res
        .status(200)
        .type('text/xml')
        .send(responseXml(action, requestId, body));
      ec2Requests.inc({ action: Object.hasOwn(actions, action) ? action : 'other', code: 'ok' });
    } catch (error) {
      const e = error instanceof Ec2Error ? error : ec2Errors.internalError();
      ec2Requests.inc({ action: Object.hasOwn(actions, action) ? action : 'other', code: e.code });
      if (!(error instanceof Ec2Error)) logger.error({ err: error, action }, 'EC2 request failed');
      else logger.debug({ action, code: e.code }, 'EC2 request refused');
      res
        .status(e.status)
        .type('text/xml')
        .send(errorXml(e.code, e.message, requestId));
    }
  });

  app.get('/_admin/faults', (_req, res) => {
    res.json(faults.current);
  });
  app.post('/_admin/faults', express.json(), (req, res) => {
    const patch = faultPatchSchema.safeParse(req.body ?? {});
    if (!patch.success) {
      res.status(400).json({ error: patch.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`) });
      return;
    }
    res.json(faults.update(patch.data as Parameters<Faults['update']>[0]));
  });
  app.delete('/_admin/faults', (_req, res) => {
    res.json(faults.reset());
  });

  const quotaOf = (region: string) => ({ region, vcpuLimit: sim.vcpuLimit(region), vcpuUsed: sim.vcpuUsed(region) });
  app.get('/_admin/quota', async (req, res) => {
    await state.exclusive(() => sim.advance());
    const region = typeof req.query.region === 'string' ? req.query.region : undefined;
    if (region === undefined) {
      res.json({ regions: REGIONS.map(quotaOf) });
    } else if (!isRegion(region)) {
      res.status(404).json({ error: `no region ${region}` });
    } else {
      res.json(quotaOf(region));
    }
  });
  app.post('/_admin/quota', express.json(), (req, res) => {
    const patch = quotaPatchSchema.safeParse(req.body ?? {});
    if (!patch.success) {
      res.status(400).json({ error: patch.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`) });
      return;
    }
    if (patch.data.region !== undefined && !isRegion(patch.data.region)) {
      res.status(404).json({ error: `no region ${patch.data.region}` });
      return;
    }
    sim.setVcpuLimit(patch.data.vcpuLimit, patch.data.region);
    res.json({ regions: REGIONS.map(quotaOf) });
  });

  return app;
}
