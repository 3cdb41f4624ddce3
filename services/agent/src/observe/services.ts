import type { ReportedService } from '@fleetgraph/schema';

/** The parts of a Kubernetes `V1Service` that its URLs depend on. */
export interface ServiceLike {
  metadata?: { namespace?: string; name?: string };
  spec?: {
    type?: string;
    ports?: readonly { name?: string; port: number; nodePort?: number; appProtocol?: string; protocol?: string }[];
  };
  status?: { loadBalancer?: { ingress?: readonly { ip?: string; hostname?: string }[] } };
}

/** Most node addresses a NodePort service lists (any node serves it). */
export const NODE_PORT_ADDRESSES = 3;

type Port = NonNullable<NonNullable<ServiceLike['spec']>['ports']>[number];

/** http or https, from the port's appProtocol, name or number. */
function scheme(port: Port, number: number): 'http' | 'https' {
  const hints = `${port.appProtocol ?? ''} ${port.name ?? ''}`.toLowerCase();
  if (/https|tls|ssl/.test(hints)) return 'https';
  if (/http/.test(hints)) return 'http';
  return number === 443 || number === 8443 || port.port === 443 || port.port === 8443 ? 'https' : 'http';
}

function url(host: string, number: number, protocol: 'http' | 'https'): string {
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const defaultPort = (protocol === 'http' && number === 80) || (protocol === 'https' && number === 443);
  return `${protocol}://${hostPart}${defaultPort ? '' : `:${number}`}/`;
}

/**
 * A LoadBalancer or NodePort service as reported, with the URLs a person can open: for a load
 * balancer, each ingress address on each TCP port (none while it is pending); for a NodePort
 * service, a few nodes' addresses on each node port. Other types (ClusterIP, ExternalName) give null.
 */
export function reportService(service: ServiceLike, nodeAddresses: readonly string[]): ReportedService | null {
  const type = service.spec?.type;
  if (type !== 'LoadBalancer' && type !== 'NodePort') return null;
  const ports = (service.spec?.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP');
  const urls: string[] = [];
  if (type === 'LoadBalancer') {
    for (const ingress of service.status?.loadBalancer?.ingress ?? []) {
      const host = ingress.hostname || ingress.ip;
      if (!host) continue;
      for (const port of ports) urls.push(url(host, port.port, scheme(port, port.port)));
    }
  } else {
    for (const host of nodeAddresses.slice(0, NODE_PORT_ADDRESSES)) {
      for (const port of ports) if (port.nodePort) urls.push(url(host, port.nodePort, scheme(port, port.nodePort)));
    }
  }
  return {
    namespace: service.metadata?.namespace ?? 'default',
    name: service.metadata?.name ?? 'unnamed',
    type: type === 'LoadBalancer' ? 'LOAD_BALANCER' : 'NODE_PORT',
    urls: [...new Set(urls)],
  };
}
