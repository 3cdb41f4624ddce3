import type { Collection, CollectionSpec, Store, StoredDoc } from '@fleetgraph/kit/store';
import type {
  AgentCredentialsDoc,
  IdempotencyDoc,
  ImageDoc,
  InstanceDoc,
  SecurityGroupDoc,
  SubnetDoc,
  VpcDoc,
} from './model.js';

/** A document before the store gave it a version. */
export type Unversioned<T extends StoredDoc> = Omit<T, 'version'> & { version?: number };

/**
 * One kind of resource: all of it in memory, every change written through to the store. The
 * local cloud is the only writer of its store, and every change runs under {@link CloudState.exclusive},
 * so the versions it holds are always the stored ones.
 */
export class Table<T extends StoredDoc> {
  private readonly docs = new Map<string, T>();

  constructor(private readonly collection: Collection<T>) {}

  async load(): Promise<void> {
    let after: string | null = null;
    do {
      const page: { nodes: T[]; hasNextPage: boolean; endCursor: string | null } = await this.collection.find({
        first: 500,
        after,
      });
      for (const doc of page.nodes) this.docs.set(doc.id, doc);
      after = page.hasNextPage ? page.endCursor : null;
    } while (after);
  }

  get(id: string): T | undefined {
    return this.docs.get(id);
  }

  values(): T[] {
    return [...this.docs.values()];
  }

  /** Inserts or replaces a document and keeps what the store returned. */
  async put(doc: Unversioned<T>): Promise<T> {
    const current = this.docs.get(doc.id);
    const saved = current
      ? await this.collection.replace({ ...doc, version: current.version } as T)
      : await this.collection.insert(doc as Parameters<Collection<T>['insert']>[0]);
    this.docs.set(saved.id, saved);
    return saved;
  }

  async remove(id: string): Promise<void> {
    if (!this.docs.has(id)) return;
    await this.collection.delete(id);
    this.docs.delete(id);
  }
}

function spec<T extends StoredDoc>(name: string): CollectionSpec<T> {
  return { name, indexes: [] };
}

/** Everything the local cloud knows, loaded from its store at start. */
export class CloudState {
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly instances: Table<InstanceDoc>,
    readonly images: Table<ImageDoc>,
    readonly vpcs: Table<VpcDoc>,
    readonly subnets: Table<SubnetDoc>,
    readonly securityGroups: Table<SecurityGroupDoc>,
    readonly tokens: Table<IdempotencyDoc>,
    /** Cluster agents' renewed credentials, by cluster id. */
    readonly agentCredentials: Table<AgentCredentialsDoc>,
  ) {}

  static async open(store: Store): Promise<CloudState> {
    const state = new CloudState(
      new Table(await store.collection(spec<InstanceDoc>('instances'))),
      new Table(await store.collection(spec<ImageDoc>('images'))),
      new Table(await store.collection(spec<VpcDoc>('vpcs'))),
      new Table(await store.collection(spec<SubnetDoc>('subnets'))),
      new Table(await store.collection(spec<SecurityGroupDoc>('security_groups'))),
      new Table(await store.collection(spec<IdempotencyDoc>('idempotency_tokens'))),
      new Table(await store.collection(spec<AgentCredentialsDoc>('agent_credentials'))),
    );
    for (const table of [
      state.instances,
      state.images,
      state.vpcs,
      state.subnets,
      state.securityGroups,
      state.tokens,
      state.agentCredentials,
    ] as Table<StoredDoc>[]) {
      await table.load();
    }
    return state;
  }

  /**
   * Runs `fn` alone: one request or one simulation step at a time, as one consistent change.
   * A simulator has no need for more, and it keeps quota checks and idempotency exact.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
