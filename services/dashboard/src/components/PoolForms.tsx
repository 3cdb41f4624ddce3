import {
  DashboardAddPoolDocument,
  DashboardCloudOfferDocument,
  DashboardScalePoolDocument,
  type CloudType,
  type DashboardCloudOfferQuery,
  type UserErrorFieldsFragment,
} from '@fleetgraph/client';
import { useEffect, useState } from 'preact/hooks';
import type { ApiError } from '../api.js';
import { useApp } from '../hooks.js';
import { COUNT_ERROR, FormErrors, wholeNumber } from './bits.js';
import './forms.css';

/** What the cluster's region offers: its zones and instance types. */
export interface CloudOffer {
  zones: readonly string[];
  instanceTypes: DashboardCloudOfferQuery['instanceTypes'];
  /** Why it could not be read, if it could not. */
  error?: string;
}

/** The zones and instance types of a cloud region, read once (null until they come). */
export function useCloudOffer(cloud: CloudType, region: string, enabled: boolean): CloudOffer | null {
  const { api } = useApp();
  const [offer, setOffer] = useState<CloudOffer | null>(null);
  useEffect(() => {
    if (!enabled) return;
    let cancelled = false;
    api
      .request(DashboardCloudOfferDocument, { cloud, region })
      .then((result) => {
        if (cancelled) return;
        const zones = result.regions.find((r) => r.name === region)?.zones ?? [];
        setOffer({ zones, instanceTypes: result.instanceTypes });
      })
      .catch((failure: ApiError) => {
        if (!cancelled) setOffer({ zones: [], instanceTypes: [], error: failure.message });
      });
    return () => {
      cancelled = true;
    };
  }, [api, cloud, region, enabled]);
  return offer;
}

/**
 * A mutation's userErrors split into those at one of `fields` (by the last element of their path)
 * and the rest, shown above the form's button.
 */
export function splitErrors(
  userErrors: readonly UserErrorFieldsFragment[],
  fields: readonly string[],
): { byField: Record<string, string>; other: string[] } {
  const byField: Record<string, string> = {};
  const other: string[] = [];
  for (const e of userErrors) {
    const field = e.field?.at(-1);
    if (field && fields.includes(field) && !byField[field]) byField[field] = e.message;
    else other.push(e.message);
  }
  return { byField, other };
}

/** The attributes that tie a control to its error message, when there is one. */
const invalid = (error: string | undefined, id: string) =>
  error ? { 'aria-invalid': 'true' as const, 'aria-describedby': id } : {};

function FieldError({ id, message }: { id: string; message: string | undefined }) {
  if (!message) return null;
  return (
    <p id={id} class="field-error" role="alert">
      {message}
    </p>
  );
}

const describeType = (t: CloudOffer['instanceTypes'][number]) =>
  `${t.name} (${t.vcpus} vCPU, ${t.memoryMiB >= 1024 ? `${+(t.memoryMiB / 1024).toFixed(1)} GiB` : `${t.memoryMiB} MiB`})`;

/**
 * Adds a worker pool (`addNodePool`): name, node count, an instance type the region offers and,
 * optionally, some of its zones (none: every zone). The API's userErrors are shown at their field.
 */
export function AddPoolForm({
  clusterId,
  offer,
  suggestedType,
  onChanged,
}: {
  clusterId: string;
  offer: CloudOffer | null;
  suggestedType: string | undefined;
  onChanged: () => void;
}) {
  const { api } = useApp();
  const [name, setName] = useState('');
  const [count, setCount] = useState('1');
  const [instanceType, setInstanceType] = useState('');
  const [zones, setZones] = useState<string[]>([]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [other, setOther] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string>();
  const types = offer?.instanceTypes ?? [];
  // The type chosen, else the one of the cluster's workers when the region offers it, else the first.
  const chosenType =
    instanceType || (types.some((t) => t.name === suggestedType) ? suggestedType : types[0]?.name) || '';

  const submit = async (event: Event) => {
    event.preventDefault();
    setDone(undefined);
    const nodes = wholeNumber(count);
    if (nodes === undefined) {
      setErrors({ count: COUNT_ERROR });
      setOther([]);
      return;
    }
    setBusy(true);
    try {
      const { addNodePool } = await api.request(DashboardAddPoolDocument, {
        clusterId,
        pool: {
          name: name.trim(),
          role: 'WORKER',
          count: nodes,
          instanceType: chosenType,
          ...(zones.length ? { availabilityZones: zones } : {}),
        },
      });
      const split = splitErrors(addNodePool.userErrors, ['name', 'count', 'instanceType', 'availabilityZones']);
      setErrors(split.byField);
      setOther(split.other);
      if (addNodePool.cluster && addNodePool.userErrors.length === 0) {
        setDone(`Pool ${name.trim()} added: generation ${addNodePool.cluster.generation}, rolling out.`);
        setName('');
        setCount('1');
        setZones([]);
        onChanged();
      }
    } catch (failure) {
      setErrors({});
      setOther([(failure as ApiError).message]);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="add-pool" aria-label="Add a node pool" onSubmit={submit} noValidate>
      <p class="help">
        Role: worker (a cluster has exactly one control-plane pool). The API checks every value; its errors show at
        their field.
      </p>
      <div class="field">
        <label for="add-pool-name">Name</label>
        <input
          id="add-pool-name"
          name="name"
          value={name}
          autoComplete="off"
          spellcheck={false}
          {...invalid(errors.name, 'add-pool-name-error')}
          onInput={(event) => setName(event.currentTarget.value)}
        />
        <FieldError id="add-pool-name-error" message={errors.name} />
      </div>
      <div class="field">
        <label for="add-pool-count">Nodes</label>
        <input
          id="add-pool-count"
          name="count"
          type="number"
          inputMode="numeric"
          min={0}
          value={count}
          {...invalid(errors.count, 'add-pool-count-error')}
          onInput={(event) => setCount(event.currentTarget.value)}
        />
        <FieldError id="add-pool-count-error" message={errors.count} />
      </div>
      <div class="field">
        <label for="add-pool-type">Instance type</label>
        <select
          id="add-pool-type"
          name="instanceType"
          value={chosenType}
          disabled={!offer}
          {...invalid(errors.instanceType, 'add-pool-type-error')}
          onChange={(event) => setInstanceType(event.currentTarget.value)}
        >
          {types.length === 0 && <option value="">{offer ? 'none offered' : 'loading…'}</option>}
          {types.map((t) => (
            <option key={t.name} value={t.name}>
              {describeType(t)}
            </option>
          ))}
        </select>
        <FieldError id="add-pool-type-error" message={errors.instanceType} />
      </div>
      <fieldset class="zones" {...(errors.availabilityZones ? { 'aria-describedby': 'add-pool-zones-error' } : {})}>
        <legend>Zones (none chosen: every zone of the region)</legend>
        <ZoneBoxes
          zones={offer?.zones ?? []}
          chosen={zones}
          onToggle={(zone, on) =>
            setZones((previous) => (on ? [...previous, zone].sort() : previous.filter((z) => z !== zone)))
          }
        />
        <FieldError id="add-pool-zones-error" message={errors.availabilityZones} />
      </fieldset>
      {offer?.error && (
        <p class="notice" role="alert">
          The region's zones and instance types cannot be read: {offer.error}
        </p>
      )}
      <FormErrors errors={other} />
      <div>
        <button type="submit" class="primary" disabled={busy || !offer}>
          Add pool
        </button>
      </div>
      {done && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
    </form>
  );
}

/**
 * Adds zones of the region to a pool (`updateNodePool` with a superset of its zones): one checkbox
 * per zone it does not use yet. Nothing when it uses them all.
 */
export function ZonesForm({
  clusterId,
  pool,
  offer,
  onChanged,
}: {
  clusterId: string;
  pool: { name: string; availabilityZones: readonly string[] };
  offer: CloudOffer | null;
  onChanged: () => void;
}) {
  const { api } = useApp();
  const [chosen, setChosen] = useState<string[]>([]);
  const [error, setError] = useState<string>();
  const [other, setOther] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string>();
  const missing = (offer?.zones ?? []).filter((z) => !pool.availabilityZones.includes(z));
  const ids = { legend: `zones-${pool.name}-legend`, error: `zones-${pool.name}-error` };
  if (missing.length === 0 && !done) return null;

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setDone(undefined);
    try {
      const { updateNodePool } = await api.request(DashboardScalePoolDocument, {
        input: {
          clusterId,
          name: pool.name,
          availabilityZones: [...pool.availabilityZones, ...chosen.filter((z) => !pool.availabilityZones.includes(z))],
        },
      });
      const split = splitErrors(updateNodePool.userErrors, ['availabilityZones']);
      setError(split.byField.availabilityZones);
      setOther(split.other);
      if (updateNodePool.cluster && updateNodePool.userErrors.length === 0) {
        setDone(`Generation ${updateNodePool.cluster.generation}: nodes are rebalanced over ${chosen.join(', ')} too.`);
        setChosen([]);
        onChanged();
      }
    } catch (failure) {
      setError(undefined);
      setOther([(failure as ApiError).message]);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="zones-form" aria-label={`Add zones to pool ${pool.name}`} onSubmit={submit}>
      {missing.length > 0 && (
        <fieldset class="zones" {...(error ? { 'aria-describedby': ids.error } : {})}>
          <legend id={ids.legend}>Add zones</legend>
          <ZoneBoxes
            zones={missing}
            chosen={chosen}
            onToggle={(zone, on) =>
              setChosen((previous) => (on ? [...previous, zone] : previous.filter((z) => z !== zone)))
            }
          />
          <button type="submit" disabled={busy || chosen.length === 0}>
            Add zones
          </button>
        </fieldset>
      )}
      <FieldError id={ids.error} message={error} />
      <FormErrors errors={other} />
      {done && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
    </form>
  );
}

/** A checkbox per zone, checked when chosen; `onToggle` says which zone was ticked or unticked. */
function ZoneBoxes({
  zones,
  chosen,
  onToggle,
}: {
  zones: readonly string[];
  chosen: readonly string[];
  onToggle(zone: string, on: boolean): void;
}) {
  return (
    <>
      {zones.map((zone) => (
        <label key={zone}>
          <input
            type="checkbox"
            name="availabilityZones"
            value={zone}
            checked={chosen.includes(zone)}
            onChange={(event) => onToggle(zone, event.currentTarget.checked)}
          />{' '}
          {zone}
        </label>
      ))}
    </>
  );
}
