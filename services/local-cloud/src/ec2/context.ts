import { ACCOUNT_ID } from '../catalog.js';
import type { IdempotencyDoc, ImageDoc, InstanceDoc, SecurityGroupDoc, SubnetDoc, VpcDoc } from '../model.js';
import { canonicalJson, sha256 } from '../net.js';
import type { Simulator } from '../simulator.js';
import type { CloudState } from '../state.js';
import { ec2Errors } from './ec2-error.js';
import type { Query } from './query.js';
import type { XmlValue } from './xml.js';

/** What an action handler works with: the state, the simulator, the request and its region. */
export interface ActionContext {
  state: CloudState;
  sim: Simulator;
  region: string;
  q: Query;
  /** The local cloud's own URL, for region endpoints. */
  endpoint: string;
}

export type ActionHandler = (ctx: ActionContext) => Promise<Record<string, XmlValue>>;

const ID_FORMAT: Record<string, RegExp> = {
  i: /^i-[0-9a-f]{8,17}$/,
  ami: /^ami-[0-9a-f]{8,17}$/,
  vpc: /^vpc-[0-9a-f]{8,17}$/,
  subnet: /^subnet-[0-9a-f]{8,17}$/,
  sg: /^sg-[0-9a-f]{8,17}$/,
};

const MALFORMED_KIND: Record<string, string> = {
  i: 'InvalidInstanceID',
  ami: 'InvalidAMIID',
  vpc: 'InvalidVpcID',
  subnet: 'InvalidSubnetID',
  sg: 'InvalidGroupId',
};

/** Fails as EC2 does on an id of the wrong shape. */
export function checkId(prefix: keyof typeof ID_FORMAT, id: string): string {
  if (!ID_FORMAT[prefix]!.test(id)) throw ec2Errors.malformedId(MALFORMED_KIND[prefix]!, id, prefix);
  return id;
}

export function inRegion<T extends { region: string }>(ctx: ActionContext, doc: T | undefined): T | undefined {
  return doc && doc.region === ctx.region ? doc : undefined;
}

export function findInstance(ctx: ActionContext, id: string): InstanceDoc | undefined {
  return inRegion(ctx, ctx.state.instances.get(id));
}

/** Images the caller may see in the request's region: its own and public ones. */
export function visibleImages(ctx: ActionContext, region = ctx.region): ImageDoc[] {
  return ctx.state.images.values().filter((i) => i.region === region && (i.ownerId === ACCOUNT_ID || i.isPublic));
}

export function findVpc(ctx: ActionContext, id: string): VpcDoc {
  const vpc = inRegion(ctx, ctx.state.vpcs.get(checkId('vpc', id)));
  if (!vpc) throw ec2Errors.vpcNotFound(id);
  return vpc;
}

export function findSubnet(ctx: ActionContext, id: string): SubnetDoc {
  const subnet = inRegion(ctx, ctx.state.subnets.get(checkId('subnet', id)));
  if (!subnet) throw ec2Errors.subnetNotFound(id);
  return subnet;
}

export function findGroup(ctx: ActionContext, id: string): SecurityGroupDoc {
  const group = inRegion(ctx, ctx.state.securityGroups.get(checkId('sg', id)));
  if (!group) throw ec2Errors.groupNotFound(id);
  return group;
}

/** Non-terminated instances: what holds subnets and security groups in use. */
export function liveInstances(ctx: ActionContext): InstanceDoc[] {
  return ctx.state.instances.values().filter((i) => i.region === ctx.region && i.state !== 'terminated');
}

/**
 * EC2's ClientToken rule: a repeat with the same token and the same parameters gets what the
 * first request made; the same token with other parameters is refused. Tokens are per region
 * and action, and kept for good (EC2 keeps them at least 24 hours after termination).
 */
export async function idempotent(
  ctx: ActionContext,
  action: string,
  token: string | undefined,
  create: () => Promise<{ resourceIds: string[]; reservationId?: string }>,
): Promise<{ resourceIds: string[]; reservationId?: string; repeated: boolean }> {
  if (!token) return { ...(await create()), repeated: false };
  const key = `${action}:${ctx.region}:${token}`;
  const paramsHash = sha256(canonicalJson(ctx.q.fingerprint()));
  const existing: IdempotencyDoc | undefined = ctx.state.tokens.get(key);
  if (existing) {
    if (existing.paramsHash !== paramsHash) throw ec2Errors.idempotentMismatch();
    return {
      resourceIds: existing.resourceIds,
      ...(existing.reservationId ? { reservationId: existing.reservationId } : {}),
      repeated: true,
    };
  }
  const made = await create();
  await ctx.state.tokens.put({
    id: key,
    action,
    region: ctx.region,
    paramsHash,
    ...made,
    createdAt: new Date(ctx.sim.now()).toISOString(),
  });
  return { ...made, repeated: false };
}

/** EC2's NextToken: an opaque offset. */
export function page<T>(
  items: T[],
  maxResults: number | undefined,
  nextToken: string | undefined,
  bounds: [number, number],
): { items: T[]; nextToken?: string } {
  let offset = 0;
  if (nextToken) {
    offset = Number(Buffer.from(nextToken, 'base64url').toString('utf8'));
    if (!Number.isInteger(offset) || offset < 0)
      throw ec2Errors.invalidParameterValue(`Invalid NextToken: ${nextToken}`);
  }
  if (maxResults === undefined) return { items: items.slice(offset) };
  if (maxResults < bounds[0] || maxResults > bounds[1]) {
    throw ec2Errors.invalidParameterValue(
      `Value ( ${maxResults} ) for parameter maxResults is invalid. ` +
        `Expecting a value between ${bounds[0]} and ${bounds[1]}.`,
    );
  }
  const end = offset + maxResults;
  return {
    items: items.slice(offset, end),
    ...(end < items.length ? { nextToken: Buffer.from(String(end)).toString('base64url') } : {}),
  };
}
