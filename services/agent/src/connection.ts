import { createBus, type Bus, type Logger } from '@fleetgraph/kit/core';
import { agentSubjects } from '@fleetgraph/schema';
import { AgentCredentials, type CredentialsRenewal, type CredentialsRenewalOptions } from './credentials.js';

export interface AgentConnectionOptions {
  /** The platform's NATS (`NATS_URL` of the agent's Secret); several separated by commas. */
  url: string;
  clusterId: string;
  log: Logger;
  /** The agent's credentials file (`NATS_CREDENTIALS` of its Secret); none when NATS does not authenticate. */
  credentials?: string;
  /** The connection's name, as NATS monitoring shows it. @default `agent-<clusterId>` */
  name?: string;
  /** Renewal settings beyond the cluster and the logger. */
  renewal?: Omit<CredentialsRenewalOptions, 'clusterId' | 'log'>;
}

/** An agent's own NATS connection, its credentials and their renewal. */
export interface AgentConnection {
  bus: Bus;
  /** Null when NATS does not authenticate. */
  credentials: AgentCredentials | null;
  /** Null without credentials. */
  renewal: CredentialsRenewal | null;
  /** Stops renewing, then drains and closes the connection. */
  close(): Promise<void>;
}

/**
 * Connects a cluster's agent to NATS as its own user: with its credentials (read again at every
 * reconnect, so that a renewed JWT is the one presented once NATS closes the connection of the
 * expired one), replies to its requests under its own inbox prefix (`agentSubjects`), and the
 * JWT renewed at ~2/3 of its life. Both the real agent (main.ts) and the local cloud's simulated
 * agents connect so.
 *
 * @throws CredentialsError when the credentials are not usable; NATS's error when it cannot connect
 */
export async function connectAgent(options: AgentConnectionOptions): Promise<AgentConnection> {
  const { clusterId, log } = options;
  const { inboxPrefix } = agentSubjects(clusterId);
  const credentials = options.credentials ? new AgentCredentials(options.credentials) : null;
  const bus = await createBus({
    url: options.url,
    name: options.name ?? `agent-${clusterId}`,
    log,
    inboxPrefix,
    ...(credentials ? { credentials: credentials.current } : {}),
  });
  const renewal = credentials ? credentials.renew(bus, { ...options.renewal, clusterId, log }) : null;
  return {
    bus,
    credentials,
    renewal,
    async close() {
      renewal?.stop();
      await bus.close();
    },
  };
}
