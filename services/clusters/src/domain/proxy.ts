import type { CloudType } from '@fleetgraph/schema';

/** What the proxy list is made from: the platform's own configuration. */
export interface ProxySettings {
  /** Clouds this deployment provisions on. */
  clouds: readonly CloudType[];
  awsRegions: readonly string[];
  localCloudUrl: string;
  /** Where agents reach the platform's NATS. */
  natsUrl: string;
  /** The platform's public GraphQL endpoint. */
  publicUrl: string;
  /** Registries images and packs are pulled from. */
  registries: readonly string[];
}

export interface ProxyRequirement {
  domain: string;
  port: number;
  description: string | null;
}

const hostPort = (url: string, fallbackPort: number): { domain: string; port: number } => {
  const u = new URL(url);
  return {
    domain: u.hostname,
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : u.protocol === 'http:' ? 80 : fallbackPort,
  };
};

/** The domains and ports the platform and its clusters must reach through a proxy, and why. Pure. */
export function proxyRequirements(s: ProxySettings): ProxyRequirement[] {
  const out: ProxyRequirement[] = [];
  if (s.clouds.includes('AWS')) {
    for (const region of s.awsRegions)
      out.push({
        domain: `ec2.${region}.amazonaws.com`,
        port: 443,
        description: `AWS EC2 API in ${region}: machines, networks, images`,
      });
    out.push({ domain: 'sts.amazonaws.com', port: 443, description: 'AWS STS: credentials for the EC2 API' });
  }
  if (s.clouds.includes('AZURE')) {
    out.push({
      domain: 'management.azure.com',
      port: 443,
      description: 'Azure Resource Manager: virtual machines, networks, images',
    });
    out.push({
      domain: 'login.microsoftonline.com',
      port: 443,
      description: 'Microsoft Entra ID: tokens for Azure Resource Manager',
    });
  }
  if (s.clouds.includes('LOCAL'))
    out.push({ ...hostPort(s.localCloudUrl, 4566), description: 'the local simulated cloud' });
  for (const registry of s.registries)
    out.push({ domain: registry, port: 443, description: 'container image and pack registry pulled by clusters' });
  out.push({ ...hostPort(s.publicUrl, 443), description: 'the Fleetgraph API, for users and integrations' });
  out.push({
    ...hostPort(s.natsUrl.replace(/^nats:/, 'tcp:'), 4222),
    description: "the platform's NATS, which cluster agents report to",
  });
  return out;
}
