import { SEED_IMAGES, SEED_REGION } from './catalog.js';
import { stableId } from './net.js';

/** The id of an out-of-the-box image (the same in every local cloud). */
export function seedImageId(name: string): string {
  return stableId('ami', name);
}

/** The first out-of-the-box image: its id and region. */
export const FIRST_SEED_IMAGE = { id: seedImageId(SEED_IMAGES[0]!.name), name: SEED_IMAGES[0]!.name, region: SEED_REGION };

/** A client of the local cloud's admin API (`/_admin/*`), for tests. */
export function localCloudAdmin(url: string) {
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${url}${path}`, {
      method,
      ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    });
    const json = (await response.json()) as T;
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  }
  return {
    quota: (region: string) => call<{ region: string; vcpuLimit: number; vcpuUsed: number }>('GET', `/_admin/quota?region=${region}`),
    setQuota: (vcpuLimit: number, region?: string) => call('POST', '/_admin/quota', { vcpuLimit, ...(region ? { region } : {}) }),
    faults: () => call<Record<string, unknown>>('GET', '/_admin/faults'),
    setFaults: (patch: Record<string, unknown>) => call<Record<string, unknown>>('POST', '/_admin/faults', patch),
    resetFaults: () => call('DELETE', '/_admin/faults'),
  };
}
