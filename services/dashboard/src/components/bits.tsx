import type { ClusterPhase, HealthStatus } from '@fleetgraph/client';

export const percent = (ratio: number | null | undefined) =>
  ratio === null || ratio === undefined || Number.isNaN(ratio) ? '–' : `${Math.round(ratio * 100)}%`;

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value >= 10 || unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export const formatTime = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '–');

/** A usage bar: a native meter with its value as text beside it. */
export function UsageBar({ label, ratio }: { label: string; ratio: number | null | undefined }) {
  const value = ratio ?? 0;
  return (
    <span class="usage">
      <meter min={0} max={1} low={0.7} high={0.9} optimum={0.3} value={value} aria-label={label} />
      <span class="usage-text">{percent(ratio)}</span>
    </span>
  );
}

export function HealthBadge({ status, stale }: { status: HealthStatus | undefined; stale?: boolean }) {
  const value = status ?? 'UNKNOWN';
  return (
    <span class={`badge health-${value.toLowerCase()}`} data-health={value}>
      {value.charAt(0) + value.slice(1).toLowerCase()}
      {stale ? ' (stale)' : ''}
    </span>
  );
}

export function PhaseBadge({ phase }: { phase: ClusterPhase }) {
  return (
    <span class={`badge phase-${phase.toLowerCase()}`} data-phase={phase}>
      {phase.charAt(0) + phase.slice(1).toLowerCase()}
    </span>
  );
}

/**
 * The errors of a mutation that name no field of the form, or a failed request. The alert is a box
 * around the list: role="alert" on the <ul> itself would take its list semantics away (axe: listitem).
 */
export function FormErrors({ errors, id }: { errors: readonly string[]; id?: string }) {
  if (errors.length === 0) return null;
  return (
    <div id={id} class="form-errors" role="alert">
      <ul>
        {errors.map((message) => (
          <li key={message}>{message}</li>
        ))}
      </ul>
    </div>
  );
}

/** The message for a node count that is not a whole number (an empty field is not 0 nodes). */
export const COUNT_ERROR = 'Give the number of nodes as a whole number.';

/**
 * A node count typed in a form, as an Int the API can parse (whether the number is allowed is the
 * API's to say); undefined when it is no whole number, an empty field included.
 */
export function wholeNumber(text: string): number | undefined {
  return /^\s*-?\d{1,9}\s*$/.test(text) ? Number(text) : undefined;
}
