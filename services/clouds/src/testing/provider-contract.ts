import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudError } from '../errors.js';
import type { CloudProvider, ClusterNetwork, CreateMachineInput, Machine, NodeRole } from '../provider.js';

/**
 * What one run of the provider contract needs: a provider, and a FAKE cloud behind it that the
 * suite can steer (quota, throttling). No run of this suite touches a real cloud.
 */
export interface ProviderHarness {
  provider: CloudProvider;
  /** Where machines go. */
  region: string;
  /** Where images are copied to. */
  otherRegion: string;
  /** Two zones of `region`. */
  zones: [string, string];
  /** A small size, and its vCPUs. */
  instanceType: string;
  instanceVcpus: number;
  /** An available image in `region`. */
  imageId: string;
  /** A well-formed id of a machine that does not exist. */
  missingMachineId: string;
  /** vCPUs that pending and running machines use in a region, as the fake counts them. */
  vcpuUsed(region: string): Promise<number>;
  /** Sets the fake's regional vCPU quota. */
  setVcpuLimit(region: string, limit: number): Promise<void>;
  /** The cloud's quota message for a limit, exactly as the fake words it. */
  quotaMessage(input: { region: string; limit: number; used: number; requested: number }): string;
  /** The cloud's error code for quota (`VcpuLimitExceeded`, `OperationNotAllowed`). */
  quotaCloudCode: string;
  /** Makes the fake throttle requests until `resetFaults`. */
  throttle(): Promise<void>;
  /** The cloud's error code for throttling (`RequestLimitExceeded`, `TooManyRequests`). */
  throttleCloudCode: string;
  /** The cloud's throttling message, exactly as the fake words it. */
  throttleMessage: string;
  resetFaults(): Promise<void>;
  close(): Promise<void>;
}

export interface ContractOptions {
  /** How long to wait for a machine to boot or an image to copy. @default 20_000 */
  timeoutMs?: number;
}

/** Polls `probe` until it returns something, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, and it succeeded');
}

/**
 * The one contract every {@link CloudProvider} keeps, run against a fake cloud. `name` says
 * which adapter and which fake, e.g. "aws adapter against the local cloud (an EC2 fake)".
 */
export function describeProviderContract(
  name: string,
  setup: () => Promise<ProviderHarness>,
  options: ContractOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 20_000;

  describe(`CloudProvider contract: ${name}`, () => {
    let h: ProviderHarness;
    const runId = randomUUID().slice(0, 8);
    const clusterId = (label: string) => `c-${label}-${runId}`;

    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.provider.close();
      await h?.close();
    });

    function machineInput(
      cluster: string,
      network: ClusterNetwork | undefined,
      extra: Partial<CreateMachineInput> = {},
    ): CreateMachineInput {
      const role: NodeRole = extra.role ?? 'WORKER';
      return {
        clientToken: randomUUID(),
        clusterId: cluster,
        pool: 'workers',
        machineName: `workers-${randomUUID().slice(0, 5)}`,
        role,
        region: h.region,
        zone: h.zones[0],
        instanceType: h.instanceType,
        imageId: h.imageId,
        ...(network ? { network } : {}),
        userData: '#cloud-config\n{}\n',
        ...extra,
      };
    }

    it('lists its regions with zones, and instance types with vCPUs and memory (fake cloud)', async () => {
      const regions = await h.provider.regions();
      const region = regions.find((r) => r.name === h.region);
      expect(region?.zones).toEqual(expect.arrayContaining(h.zones));
      expect(regions.map((r) => r.name)).toContain(h.otherRegion);
      const types = await h.provider.instanceTypes(h.region);
      const small = types.find((t) => t.name === h.instanceType);
      expect(small).toMatchObject({ vcpus: h.instanceVcpus });
      expect(small!.memoryMiB).toBeGreaterThan(0);
    });

    it('ensureNetwork is idempotent and keeps control-plane and worker nodes in separate domains (fake cloud)', async () => {
      const input = { clusterId: clusterId('net'), region: h.region, zones: h.zones };
      const first = await h.provider.ensureNetwork(input);
      const again = await h.provider.ensureNetwork(input);
      expect(again).toEqual(first);

      expect(first.controlPlane.securityGroupId).not.toBe(first.workers.securityGroupId);
      const cpSubnets = first.controlPlane.subnets.map((s) => s.id);
      const workerSubnets = first.workers.subnets.map((s) => s.id);
      expect(cpSubnets.length).toBeGreaterThan(0);
      expect(workerSubnets.length).toBeGreaterThan(0);
      expect(cpSubnets.filter((id) => workerSubnets.includes(id))).toEqual([]);
      const cidrs = [...first.controlPlane.subnets, ...first.workers.subnets].map((s) => s.cidr);
      expect(new Set(cidrs).size).toBe(cidrs.length);
      // Zonal clouds make a subnet per zone and role; regional ones one per role.
      for (const domain of [first.controlPlane, first.workers]) {
        const zones = domain.subnets.map((s) => s.zone);
        expect(zones.every((z) => z === null) || [...zones].sort().join() === [...h.zones].sort().join()).toBe(true);
      }

      await h.provider.deleteNetwork({ clusterId: input.clusterId, region: h.region });
      await h.provider.deleteNetwork({ clusterId: input.clusterId, region: h.region });
    });

    it('makes one machine for a create retried with the same client token, sequentially or concurrently (fake cloud)', async () => {
      const cluster = clusterId('idem');
      const network = await h.provider.ensureNetwork({ clusterId: cluster, region: h.region, zones: h.zones });
      const input = machineInput(cluster, network);
      const first = await h.provider.createMachine(input);
      const retried = await h.provider.createMachine(input);
      expect(retried.id).toBe(first.id);

      const concurrent = machineInput(cluster, network, { pool: 'other' });
      const results = await Promise.all([
        h.provider.createMachine(concurrent),
        h.provider.createMachine(concurrent),
        h.provider.createMachine(concurrent),
      ]);
      expect(new Set(results.map((m) => m.id)).size).toBe(1);

      const machines = await h.provider.describeMachines({ clusterId: cluster, region: h.region });
      expect(machines.map((m) => m.id).sort()).toEqual([first.id, results[0]!.id].sort());
      expect(first).toMatchObject({
        clusterId: cluster,
        pool: 'workers',
        name: input.machineName,
        role: 'WORKER',
        region: h.region,
        instanceType: h.instanceType,
      });
    });

    it('refuses the same client token with different input as INVALID_CONFIGURATION (fake cloud)', async () => {
      const cluster = clusterId('mismatch');
      const input = machineInput(cluster, undefined);
      await h.provider.createMachine(input);
      const error = await rejection(h.provider.createMachine({ ...input, machineName: `${input.machineName}-other` }));
      expect(error).toBeInstanceOf(CloudError);
      expect(error).toMatchObject({
        name: 'CloudError',
        code: 'INVALID_CONFIGURATION',
        cloudCode: 'IdempotentParameterMismatch',
        retryable: false,
      });
    });

    it('describes machines by cluster tag, and a pool within it (fake cloud)', async () => {
      const a = clusterId('tag-a');
      const b = clusterId('tag-b');
      const [a1, a2, b1] = await Promise.all([
        h.provider.createMachine(machineInput(a, undefined, { pool: 'p1' })),
        h.provider.createMachine(machineInput(a, undefined, { pool: 'p2', role: 'CONTROL_PLANE', zone: h.zones[1] })),
        h.provider.createMachine(machineInput(b, undefined)),
      ]);
      const ofA = await h.provider.describeMachines({ clusterId: a, region: h.region });
      expect(ofA.map((m) => m.id).sort()).toEqual([a1!.id, a2!.id].sort());
      expect(ofA.find((m) => m.id === a2!.id)).toMatchObject({ pool: 'p2', role: 'CONTROL_PLANE', zone: a2!.zone });
      const ofP1 = await h.provider.describeMachines({ clusterId: a, region: h.region, pool: 'p1' });
      expect(ofP1.map((m) => m.id)).toEqual([a1!.id]);
      const ofB = await h.provider.describeMachines({ clusterId: b, region: h.region });
      expect(ofB.map((m) => m.id)).toEqual([b1!.id]);
    });

    it('boots a machine to running, and describes it by id (fake cloud)', async () => {
      const machine = await h.provider.createMachine(machineInput(clusterId('boot'), undefined));
      const running = await eventually(
        async () => {
          const m = await h.provider.describeMachine(h.region, machine.id);
          return m?.state === 'running' ? m : null;
        },
        timeoutMs,
        'the machine to run',
      );
      expect(running).toMatchObject({ id: machine.id, zone: h.zones[0], imageId: h.imageId });
      // Its private address, where the cluster's other nodes join it: by id and in the cluster's list.
      expect(running.privateIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const listed = await h.provider.describeMachines({ clusterId: machine.clusterId, region: h.region });
      expect(listed.find((m) => m.id === machine.id)?.privateIp).toBe(running.privateIp);
    });

    it("classifies exceeding the vCPU quota as QUOTA_EXCEEDED with the cloud's own message (fake cloud)", async () => {
      const cluster = clusterId('quota');
      const used = await h.vcpuUsed(h.region);
      const limit = used + h.instanceVcpus;
      await h.setVcpuLimit(h.region, limit);
      try {
        await h.provider.createMachine(machineInput(cluster, undefined));
        const error = await rejection(h.provider.createMachine(machineInput(cluster, undefined)));
        expect(error).toBeInstanceOf(CloudError);
        expect(error).toMatchObject({
          name: 'CloudError',
          code: 'QUOTA_EXCEEDED',
          cloudCode: h.quotaCloudCode,
          retryable: true,
          message: h.quotaMessage({ region: h.region, limit, used: limit, requested: h.instanceVcpus }),
        });
        expect((error as CloudError).cause).toBeDefined();
        const quota = await h.provider.quota(h.region);
        if (quota) expect(quota).toMatchObject({ region: h.region, vcpuLimit: limit, vcpuUsed: limit });
      } finally {
        await h.setVcpuLimit(h.region, 10_000);
      }
    });

    it('classifies throttling as RATE_LIMITED, retryable (fake cloud)', async () => {
      await h.throttle();
      try {
        // One after another: describes in flight together may be made as one call (AWS batches them).
        const results: PromiseSettledResult<unknown>[] = [];
        for (let i = 0; i < 6; i++) {
          const [result] = await Promise.allSettled([
            h.provider.describeMachines({ clusterId: clusterId('throttle'), region: h.region }),
          ]);
          results.push(result!);
        }
        const failures = results
          .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
          .map((r) => r.reason as unknown);
        expect(failures.length).toBeGreaterThan(0);
        for (const failure of failures) {
          expect(failure).toBeInstanceOf(CloudError);
          expect(failure).toMatchObject({
            code: 'RATE_LIMITED',
            retryable: true,
            cloudCode: h.throttleCloudCode,
            message: h.throttleMessage,
          });
        }
      } finally {
        await h.resetFaults();
      }
    });

    it('treats deleting a missing machine, or one deleted already, as done (fake cloud)', async () => {
      await expect(h.provider.deleteMachine(h.region, h.missingMachineId)).resolves.toBeUndefined();
      expect(await h.provider.describeMachine(h.region, h.missingMachineId)).toBeNull();
      const machine = await h.provider.createMachine(machineInput(clusterId('delete'), undefined));
      await h.provider.deleteMachine(h.region, machine.id);
      await h.provider.deleteMachine(h.region, machine.id);
      await eventually(
        async () => {
          const m = await h.provider.describeMachine(h.region, machine.id);
          return !m || m.state === 'terminated' || m.state === 'terminating';
        },
        timeoutMs,
        'the machine to go',
      );
    });

    it('copies an image to another region, where it becomes available (fake cloud)', async () => {
      const clientToken = randomUUID();
      const input = {
        sourceRegion: h.region,
        sourceImageId: h.imageId,
        region: h.otherRegion,
        name: `contract-copy-${runId}`,
        clientToken,
        tags: { 'fleetgraph:test': runId },
      };
      const copy = await h.provider.copyImage(input);
      expect(copy.region).toBe(h.otherRegion);
      const again = await h.provider.copyImage(input);
      expect(again.id).toBe(copy.id);
      const available = await eventually(
        async () => {
          const image = await h.provider.describeImage(h.otherRegion, copy.id);
          return image?.status === 'available' ? image : null;
        },
        timeoutMs,
        'the copy to become available',
      );
      expect(available).toMatchObject({ id: copy.id, region: h.otherRegion, status: 'available' });
      expect(await h.provider.describeImage(h.otherRegion, `no-such-image-${runId}`)).toBeNull();
    });

    it('captures a machine as an image, finds it by tag, and deletes it (fake cloud)', async () => {
      const machine = await h.provider.createMachine(machineInput(clusterId('capture'), undefined));
      await eventually(
        async () => (await h.provider.describeMachine(h.region, machine.id))?.state === 'running',
        timeoutMs,
        'the machine to run',
      );
      const tags = { 'fleetgraph:signature': `sig-${runId}` };
      const name = `contract-capture-${runId}`;
      const image = await h.provider.createImageFromMachine({ region: h.region, machineId: machine.id, name, tags });
      const retried = await h.provider.createImageFromMachine({ region: h.region, machineId: machine.id, name, tags });
      expect(retried.id).toBe(image.id);
      await eventually(
        async () => (await h.provider.describeImage(h.region, image.id))?.status === 'available',
        timeoutMs,
        'the image to become available',
      );
      const found = await h.provider.findImages(h.region, tags);
      expect(found.map((i) => i.id)).toEqual([image.id]);
      expect((await h.provider.describeImage(h.region, name))?.id).toBe(image.id);
      await h.provider.deleteImage(h.region, image.id);
      await h.provider.deleteImage(h.region, image.id);
      expect(await h.provider.describeImage(h.region, image.id)).toBeNull();
    });

    it('deletes a network once its machines are gone, failing TRANSIENT until then (fake cloud)', async () => {
      const cluster = clusterId('teardown');
      const network = await h.provider.ensureNetwork({ clusterId: cluster, region: h.region, zones: h.zones });
      const machine: Machine = await h.provider.createMachine(
        machineInput(cluster, network, { role: 'CONTROL_PLANE' }),
      );
      const blocked = await rejection(h.provider.deleteNetwork({ clusterId: cluster, region: h.region }));
      expect(blocked).toMatchObject({ name: 'CloudError', code: 'TRANSIENT', retryable: true });
      await h.provider.deleteMachine(h.region, machine.id);
      await eventually(
        async () => {
          await h.provider.deleteNetwork({ clusterId: cluster, region: h.region });
          return true;
        },
        timeoutMs,
        'the network to be deletable',
      );
      expect(await h.provider.describeMachines({ clusterId: cluster, region: h.region })).toEqual([]);
    });
  });
}
