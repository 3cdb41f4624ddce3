import { Ec2Error, ec2Errors } from './ec2-error.js';

/** A parsed Query API request: `Filter.1.Value.2=x` becomes `{ Filter: [{ Value: [, 'x'] }] }`, compacted. */
export type Params = { [name: string]: ParamValue };
export type ParamValue = string | Params | ParamValue[];

/** Turns EC2's flattened form fields into a tree; numbered segments (1-based) become arrays. */
export function parseParams(form: Record<string, unknown>): Params {
  const root: Params = {};
  for (const [key, raw] of Object.entries(form)) {
    const value = Array.isArray(raw) ? String(raw.at(-1)) : String(raw);
    const parts = key.split('.');
    let node: Params | ParamValue[] = root;
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      const next = parts[i + 1];
      const slot: string | number = /^\d+$/.test(part) ? Number(part) - 1 : part;
      const container = node as Record<string | number, ParamValue>;
      if (last) {
        container[slot] = value;
        return;
      }
      if (container[slot] === undefined || typeof container[slot] === 'string') {
        container[slot] = next !== undefined && /^\d+$/.test(next) ? [] : {};
      }
      node = container[slot] as Params | ParamValue[];
    });
  }
  return compact(root) as Params;
}

function compact(value: ParamValue): ParamValue {
  if (Array.isArray(value)) return value.filter((v) => v !== undefined).map(compact);
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, compact(v)]));
  return value;
}

/** Typed reads of a request's parameters, failing as EC2 fails. */
export class Query {
  constructor(readonly params: Params) {}

  string(name: string): string | undefined {
    const v = this.params[name];
    return typeof v === 'string' ? v : undefined;
  }

  required(name: string): string {
    const v = this.string(name);
    if (v === undefined || v === '') throw ec2Errors.missingParameter(name);
    return v;
  }

  int(name: string): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw ec2Errors.invalidParameterValue(`Invalid value '${v}' for ${name}`);
    return n;
  }

  bool(name: string): boolean | undefined {
    const v = this.string(name);
    return v === undefined ? undefined : v === 'true';
  }

  /** `Name.1`, `Name.2`, ... as strings. */
  list(name: string): string[] {
    const v = this.params[name];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  }

  /** `Name.1.Field`, ... as objects. */
  objects(name: string): Params[] {
    const v = this.params[name];
    return Array.isArray(v) ? v.filter((x): x is Params => typeof x === 'object' && !Array.isArray(x)) : [];
  }

  object(name: string): Params | undefined {
    const v = this.params[name];
    return v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  }

  /** `Filter.N.Name` / `Filter.N.Value.M`. */
  filters(): { name: string; values: string[] }[] {
    return this.objects('Filter').map((f) => {
      if (typeof f.Name !== 'string') throw ec2Errors.missingParameter('Filter.Name');
      return {
        name: f.Name,
        values: Array.isArray(f.Value) ? f.Value.filter((x): x is string => typeof x === 'string') : [],
      };
    });
  }

  /** Tags of `TagSpecification.N` for one resource type. */
  tagsFor(resourceType: string): Record<string, string> {
    const tags: Record<string, string> = {};
    for (const spec of this.objects('TagSpecification')) {
      if (spec.ResourceType !== resourceType) continue;
      for (const tag of Array.isArray(spec.Tag) ? spec.Tag : []) {
        if (typeof tag === 'object' && !Array.isArray(tag) && typeof tag.Key === 'string') {
          tags[tag.Key] = typeof tag.Value === 'string' ? tag.Value : '';
        }
      }
    }
    return tags;
  }

  /** Every parameter but the action, version and those named: what idempotency compares. */
  fingerprint(except: string[] = []): Params {
    const skip = new Set(['Action', 'Version', 'ClientToken', ...except]);
    return Object.fromEntries(Object.entries(this.params).filter(([k]) => !skip.has(k)));
  }
}

/**
 * The region of a request: SigV4 puts it in the credential scope
 * (`Credential=AKID/20240101/local-1/ec2/aws4_request`), since one endpoint serves every region.
 */
export function regionOfRequest(authorization: string | undefined): string {
  const match = authorization ? /Credential=[^/]+\/\d{8}\/([^/]+)\/ec2\/aws4_request/.exec(authorization) : null;
  if (!match) throw ec2Errors.authFailure();
  return match[1]!;
}

export { Ec2Error };
