/**
 * One timer for every cluster's next deadline (a heartbeat turning late, a check crossing its
 * threshold): deadlines are kept in slots of `resolutionMs`, and `take` returns those that are
 * due. Nothing scans all clusters. Moving a deadline (every report moves the heartbeat's) adds
 * the id to its new slot and leaves it in the old one, where `take` skips it (the id's slot is
 * the one in `#slotOf`): three Map and Set operations a report rather than seven, and no churn
 * of the large map. An id stays in as many slots as it was moved to within its deadline's
 * horizon (a few: the heartbeat's deadline is three intervals ahead).
 */
export class Deadlines {
  readonly #resolutionMs: number;
  readonly #slots = new Map<number, Set<string>>();
  /** The slot of each id's deadline. */
  readonly #slotOf = new Map<string, number>();
  #cursor: number | null = null;

  constructor(resolutionMs: number) {
    if (!(resolutionMs > 0)) throw new RangeError('resolutionMs must be positive');
    this.#resolutionMs = resolutionMs;
  }

  /** Deadlines pending. */
  get size(): number {
    return this.#slotOf.size;
  }

  /** Sets (or moves, or with null removes) the deadline of an id. */
  set(id: string, at: number | null): void {
    if (at === null) {
      this.delete(id);
      return;
    }
    // A deadline in a slot already taken is due at the next take: slot -Infinity.
    const ceil = Math.ceil(at / this.#resolutionMs);
    const slot = this.#cursor !== null && ceil < this.#cursor ? -Infinity : ceil;
    if (this.#slotOf.get(id) === slot) return;
    let ids = this.#slots.get(slot);
    if (!ids) {
      ids = new Set();
      this.#slots.set(slot, ids);
    }
    ids.add(id);
    this.#slotOf.set(id, slot);
  }

  delete(id: string): void {
    // Its entry in its slot is skipped when that slot is taken.
    this.#slotOf.delete(id);
  }

  /** The ids whose deadline is at or before `now`, removed from the schedule. */
  take(now: number): string[] {
    const until = Math.floor(now / this.#resolutionMs);
    const due: string[] = [];
    this.#drain(-Infinity, due);
    if (this.#cursor === null) {
      // First take: every slot up to now (slots are few before the first take).
      for (const slot of [...this.#slots.keys()].filter((s) => s <= until)) this.#drain(slot, due);
    } else {
      // Walk the slots since the last take; after a long pause, only the ones that exist.
      const span = until - this.#cursor;
      if (span > this.#slots.size) {
        for (const slot of [...this.#slots.keys()].filter((s) => s <= until)) this.#drain(slot, due);
      } else {
        for (let slot = this.#cursor; slot <= until; slot++) this.#drain(slot, due);
      }
    }
    this.#cursor = until + 1;
    return due;
  }

  #drain(slot: number, due: string[]): void {
    const ids = this.#slots.get(slot);
    if (!ids) return;
    this.#slots.delete(slot);
    for (const id of ids) {
      // Moved to another slot since, or removed: not due now.
      if (this.#slotOf.get(id) !== slot) continue;
      this.#slotOf.delete(id);
      due.push(id);
    }
  }
}
