import type { ReportedNode, ReportedService } from '@fleetgraph/schema';

/** What the agent sees of its cluster at one moment. */
export interface Observation {
  /** The nodes; null when they could not be observed this time (the report is still a heartbeat). */
  nodes: ReportedNode[] | null;
  /** LoadBalancer and NodePort services; null when they could not be observed this time. */
  services: ReportedService[] | null;
  /** What could not be observed and why, e.g. "metrics.k8s.io: 503". */
  problems: string[];
}

/**
 * Where the agent's observations come from: the cluster's Kubernetes API
 * (`KubernetesObservations`) or a simulated cluster (`SimulatedObservations`). The reporting
 * part knows no more than this.
 */
export interface ObservationSource {
  readonly kind: 'simulated' | 'kubernetes';
  /** Observes the cluster now. Partial failures are reported in `problems`, not thrown. */
  observe(): Promise<Observation>;
  /** When true, the agent sends nothing, as a dead one would (a simulated fault). @default false */
  readonly silent?: boolean;
  /**
   * Hears that the set of nodes or services changed (a node joined or left; a service appeared,
   * changed or went), so that a full report goes out at once rather than at the next interval.
   * Returns the function that stops listening. A source without it is observed at intervals only.
   */
  onChange?(listener: () => void): () => void;
}
