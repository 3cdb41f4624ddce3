import { Node, PageInfo, UserError } from '@fleetgraph/kit';
import { Directive, Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { webhookEventTypes, type WebhookEventType as EventType } from './events.js';
import { deliveryStatuses, type DeliveryStatus } from './webhook.repo.js';

/** An enum-like object of a list of names, as type-graphql registers enums from. */
const enumOf = <const T extends readonly string[]>(names: T) =>
  Object.fromEntries(names.map((name) => [name, name])) as { readonly [K in T[number]]: K };

export const WebhookEventType = enumOf(webhookEventTypes);
export type WebhookEventType = EventType;
export const WebhookDeliveryStatus = enumOf(deliveryStatuses);
export type WebhookDeliveryStatus = DeliveryStatus;

registerEnumType(WebhookEventType, {
  name: 'WebhookEventType',
  description: 'What a webhook is told about.',
  valuesConfig: {
    CLUSTER_PHASE: { description: "A cluster's phase changed." },
    CLUSTER_CONDITION: { description: "A cluster's conditions changed (its phase and every condition)." },
    CLUSTER_WARNING_EVENT: { description: 'A cluster event of severity WARNING.' },
    HEALTH_CHANGED: { description: "A cluster's health changed." },
    LOG_BUNDLE_READY: { description: 'A log bundle is ready to download.' },
    TEST: { description: 'A delivery of testWebhook; not one a webhook subscribes to.' },
  },
});
registerEnumType(WebhookDeliveryStatus, {
  name: 'WebhookDeliveryStatus',
  description: 'Where a delivery is.',
  valuesConfig: {
    PENDING: { description: 'Not delivered yet: waiting for its turn or for a retry.' },
    SUCCEEDED: { description: 'The endpoint answered 2xx.' },
    FAILED: { description: 'Given up: it failed for a day, or its webhook was disabled or deleted.' },
  },
});

@ObjectType({ description: 'One event sent (or to send) to a webhook, and how sending it went.' })
export class WebhookDelivery {
  @Field(() => ID, { description: 'The webhook-id header: the same for every attempt, to de-duplicate with.' })
  id!: string;

  @Field(() => WebhookEventType, { description: 'What it tells.' })
  event!: WebhookEventType;

  @Field(() => WebhookDeliveryStatus, { description: 'Where it is.' })
  status!: WebhookDeliveryStatus;

  @Field(() => Int, { description: 'Attempts made so far.' })
  attempts!: number;

  @Field(() => Int, {
    nullable: true,
    description: "The endpoint's HTTP status at the last attempt; null when none came.",
  })
  responseStatus!: number | null;

  @Field(() => Date, { nullable: true, description: 'When the last attempt was made.' })
  lastAttemptAt!: Date | null;

  @Field({ description: 'The JSON body sent: { type, timestamp, data }.' })
  payload!: string;

  @Field(() => ID, { nullable: true, description: 'The cluster it is about; null for a test delivery.' })
  clusterId!: string | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Milliseconds the last attempt took until the answer (or the failure).',
  })
  latencyMs!: number | null;

  @Field(() => String, {
    nullable: true,
    description: 'Why the last attempt failed: the network error, or the HTTP status and the start of the answer.',
  })
  error!: string | null;

  @Field(() => Date, { nullable: true, description: 'When it is tried next, while PENDING.' })
  nextAttemptAt!: Date | null;

  @Field(() => Date, { description: 'When it was queued.' })
  createdAt!: Date;
}

@ObjectType({ description: 'A delivery of a page and its cursor.' })
export class WebhookDeliveryEdge {
  @Field({ description: 'Opaque; pass it as `after` to continue right after this node.' })
  cursor!: string;

  @Field(() => WebhookDelivery, { description: 'The delivery.' })
  node!: WebhookDelivery;
}

@ObjectType({ description: "A page of a webhook's deliveries, newest first." })
export class WebhookDeliveryConnection {
  @Field(() => [WebhookDelivery], { description: 'The deliveries of this page.' })
  nodes!: WebhookDelivery[];

  @Field(() => [WebhookDeliveryEdge], { description: 'The deliveries of this page, each with its cursor (Relay).' })
  edges!: WebhookDeliveryEdge[];

  @Field(() => PageInfo, { description: 'Where this page ends.' })
  pageInfo!: PageInfo;
}

@Directive('@key(fields: "id")')
@ObjectType({
  implements: Node,
  description:
    'An HTTP endpoint told about events of a project. Deliveries are signed per the Standard Webhooks ' +
    'specification (headers webhook-id, webhook-timestamp, webhook-signature) and delivered at least once, ' +
    'ordered per cluster.',
})
export class Webhook extends Node {
  @Field(() => ID, { description: 'The project whose events it gets.' })
  projectId!: string;

  @Field({ description: 'Where deliveries are POSTed (http or https).' })
  url!: string;

  @Field(() => [WebhookEventType], { description: 'The events it gets.' })
  events!: WebhookEventType[];

  @Field(() => String, { nullable: true, description: 'What it is for.' })
  description!: string | null;

  @Field({
    description: 'False once disabled (its deliveries failed for a day): it gets no deliveries until enabled again.',
  })
  enabled!: boolean;

  @Field(() => String, { nullable: true, description: 'Why it was disabled; null while enabled.' })
  disabledReason!: string | null;

  @Field(() => Date, { nullable: true, description: 'When it was disabled; null while enabled.' })
  disabledAt!: Date | null;

  @Field(() => Date, { description: 'When it was created.' })
  createdAt!: Date;
}

@InputType({ description: 'A new webhook.' })
export class CreateWebhookInput {
  @Field(() => ID, { description: 'The project whose events it gets (its admins only).' })
  projectId!: string;

  @Field({
    description:
      'Where deliveries are POSTed: http or https, no credentials, no private, loopback or link-local ' +
      'address unless the operator allows it (WEBHOOK_ALLOWED_CIDRS).',
  })
  url!: string;

  @Field(() => [WebhookEventType], { description: 'The events it gets (TEST is not one).' })
  events!: WebhookEventType[];

  @Field(() => String, { nullable: true, description: 'What it is for, up to 1000 characters.' })
  description?: string | null;
}

@ObjectType({ description: 'The outcome of createWebhook.' })
export class CreateWebhookPayload {
  @Field(() => Webhook, { nullable: true, description: 'The webhook, when it was created.' })
  webhook!: Webhook | null;

  @Field(() => String, {
    nullable: true,
    description: 'The signing secret (whsec_...): shown once, here; rotateWebhookSecret makes a new one.',
  })
  secret!: string | null;

  @Field(() => [UserError], { description: 'Why the mutation did not succeed; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The outcome of rotateWebhookSecret.' })
export class RotateWebhookSecretPayload {
  @Field(() => Webhook, { nullable: true, description: 'The webhook.' })
  webhook!: Webhook | null;

  @Field(() => String, {
    nullable: true,
    description:
      'The new signing secret (whsec_...), shown once. For 24 hours, deliveries carry a signature with the ' +
      'previous secret too, so receivers can switch without refusing any.',
  })
  secret!: string | null;

  @Field(() => [UserError], { description: 'Why the mutation did not succeed; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The outcome of a webhook mutation.' })
export class WebhookPayload {
  @Field(() => Webhook, { nullable: true, description: 'The webhook.' })
  webhook!: Webhook | null;

  @Field(() => [UserError], { description: 'Why the mutation did not succeed; empty on success.' })
  userErrors!: UserError[];
}
