import {
  ListWatch,
  Watch,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Node,
  type V1Pod,
  type V1Service,
} from '@kubernetes/client-node';
import { describe, KubernetesObservations, RUNNING_PODS, type KubernetesObservationsOptions } from './kubernetes.js';

export interface WatchingKubernetesObservationsOptions extends KubernetesObservationsOptions {
  /** The first wait before a failed list or watch is started again; doubled at each failure in a row. @default 1000 */
  retryBaseMs?: number;
  /** The longest wait between two attempts. @default 30000 */
  retryCapMs?: number;
}

/**
 * One kind of object kept by an informer (list, then watch from the list's resource version,
 * as client-go's reflector does; a 410 Gone lists again). A failed list or watch makes the
 * kind unknown until a new informer has listed it again, after a backoff.
 */
class WatchedKind<T extends KubernetesObject> {
  #informer: ListWatch<T> | null = null;
  #ready = false;
  #problem = 'not listed yet';
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #firstOutcome: Promise<void>;
  #settleFirst!: () => void;

  constructor(
    private readonly make: (list: () => Promise<KubernetesListObject<T>>) => ListWatch<T>,
    private readonly list: () => Promise<KubernetesListObject<T>>,
    private readonly retry: { baseMs: number; capMs: number },
    /** The informer events that change what a full report says of this kind, and whom to tell. */
    private readonly changes: { on: readonly ('add' | 'update' | 'delete')[]; notify: () => void },
  ) {
    this.#firstOutcome = new Promise((resolve) => (this.#settleFirst = resolve));
  }

  /** Starts watching; resolves once the first list succeeded or failed. */
  start(): Promise<void> {
    this.#stopped = false;
    this.#begin();
    return this.#firstOutcome;
  }

  #begin(): void {
    if (this.#stopped) return;
    const informer = this.make(async () => {
      const listed = await this.list();
      if (this.#informer === informer) {
        this.#ready = true;
        this.#failures = 0;
        this.#settleFirst();
      }
      return listed;
    });
    for (const event of this.changes.on) {
      informer.on(event, () => {
        if (this.#informer === informer && this.#ready) this.changes.notify();
      });
    }
    informer.on('error', (error?: unknown) => {
      if (this.#informer !== informer || this.#stopped) return;
      this.#ready = false;
      this.#problem = describe(error);
      this.#failures++;
      this.#settleFirst();
      void informer.stop();
      this.#informer = null;
      const wait = Math.min(this.retry.capMs, this.retry.baseMs * 2 ** Math.min(this.#failures - 1, 16));
      this.#timer = setTimeout(() => this.#begin(), wait);
      this.#timer.unref();
    });
    this.#informer = informer;
    void informer.start();
  }

  /** The objects now. @throws when they are not known (not listed yet, or the watch failed and is being restarted) */
  items(): T[] {
    if (!this.#ready || !this.#informer) throw new Error(this.#problem);
    return [...this.#informer.list()];
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const informer = this.#informer;
    this.#informer = null;
    this.#ready = false;
    this.#settleFirst();
    await informer?.stop();
  }
}

/**
 * Observations of a real cluster that watch what the API lets be watched: nodes, non-terminated
 * pods and services are kept by informers (one list, then a watch, through
 * @kubernetes/client-node's `ListWatch`), so that an observation reads memory rather than
 * listing every pod again. What has no watch is read at every observation: metrics.k8s.io's
 * NodeMetrics and each kubelet's `stats/summary`. Call `start()` before the first observation
 * and `stop()` to end the watches.
 *
 * Needs get, list and watch on nodes, pods and services; get on nodes/proxy; get and list on
 * metrics.k8s.io nodes.
 */
export class WatchingKubernetesObservations extends KubernetesObservations {
  readonly #nodes: WatchedKind<V1Node>;
  readonly #pods: WatchedKind<V1Pod>;
  readonly #services: WatchedKind<V1Service>;
  readonly #listeners = new Set<() => void>();

  constructor(options: WatchingKubernetesObservationsOptions = {}) {
    super(options);
    const retry = { baseMs: options.retryBaseMs ?? 1_000, capMs: options.retryCapMs ?? 30_000 };
    const watch = new Watch(this.kubeConfig);
    const notify = () => {
      for (const listener of [...this.#listeners]) listener();
    };
    // A node joining or leaving, and any change of a service (its ports, its load balancer's
    // address), change a full report; a node's status is updated every few seconds and waits
    // for the next interval.
    this.#nodes = new WatchedKind<V1Node>(
      (list) => new ListWatch('/api/v1/nodes', watch, list, false),
      () => this.core.listNode(),
      retry,
      {
        on: ['add', 'delete'],
        notify,
      },
    );
    this.#pods = new WatchedKind<V1Pod>(
      // The same field selector on the watch: a pod that finishes is DELETED from the cache.
      (list) => new ListWatch('/api/v1/pods', watch, list, false, undefined, RUNNING_PODS),
      () => this.listPodPages(),
      retry,
      { on: [], notify },
    );
    this.#services = new WatchedKind<V1Service>(
      (list) => new ListWatch('/api/v1/services', watch, list, false),
      () => this.core.listServiceForAllNamespaces(),
      retry,
      { on: ['add', 'update', 'delete'], notify },
    );
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Starts the watches; resolves once each kind has been listed, or has failed to be (and is retried). */
  async start(): Promise<void> {
    await Promise.all([this.#nodes.start(), this.#pods.start(), this.#services.start()]);
  }

  /** Ends the watches. */
  async stop(): Promise<void> {
    await Promise.all([this.#nodes.stop(), this.#pods.stop(), this.#services.stop()]);
  }

  protected override async listNodes(): Promise<V1Node[]> {
    return this.#nodes.items();
  }

  protected override async listPods(): Promise<V1Pod[]> {
    return this.#pods.items();
  }

  protected override async listServices(): Promise<V1Service[]> {
    return this.#services.items();
  }
}
