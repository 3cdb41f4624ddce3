/**
 * Cursors of `CURSOR` subscriptions: the JetStream stream sequence of an event, as a decimal
 * string. Clients treat it as opaque; the gateway writes it into the payload's `cursor` field.
 */
const CURSOR = /^(0|[1-9]\d{0,15})$/;

/** The cursor of the event at a stream sequence. */
export const formatCursor = (seq: number): string => String(seq);

/** The stream sequence a cursor names, or undefined when it is not a cursor. */
export function parseCursor(cursor: string): number | undefined {
  if (!CURSOR.test(cursor)) return undefined;
  const seq = Number(cursor);
  return Number.isSafeInteger(seq) ? seq : undefined;
}
