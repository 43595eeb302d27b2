/**
 * Free lists that hand out their oldest item first, keyed by a size.
 *
 * The items a step acquires then depend only on which are free, not on the
 * order they were freed in: a step that frees what it acquired gets the same
 * items the next time, and so the bind groups it made before
 * (see bind_groups.ts).
 *
 * @module
 */

/** Free items by key; each item is stamped with its age when made. */
export class FreeLists<K, T extends object> {
  /** Per key, free items newest first (`pop` takes the oldest). */
  readonly #lists = new Map<K, T[]>();
  readonly #age = new WeakMap<T, number>();
  #made = 0;
  #idle = 0;

  /**
   * Records a newly made item's age.
   *
   * @example
   * ```ts
   * import { FreeLists } from "./free_lists.ts";
   * const lists = new FreeLists<number, object>();
   * const [a, b] = [lists.stamp({}), lists.stamp({})];
   * lists.put(4, a);
   * lists.put(4, b);
   * lists.take(4) === a; // true: the older one
   * ```
   */
  stamp(item: T): T {
    this.#age.set(item, this.#made++);
    return item;
  }

  /** The oldest free item of `key`, or undefined. */
  take(key: K): T | undefined {
    const hit = this.#lists.get(key)?.pop();
    if (hit) this.#idle--;
    return hit;
  }

  /** Frees `item` under `key`. */
  put(key: K, item: T): void {
    let list = this.#lists.get(key);
    if (!list) this.#lists.set(key, list = []);
    const age = this.#age.get(item) ?? -1;
    let lo = 0, hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#age.get(list[mid]) ?? -1) > age) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, item);
    this.#idle++;
  }

  /** Free items in all lists. */
  get idle(): number {
    return this.#idle;
  }

  /** Every free item, then empties the lists. */
  drain(): T[] {
    const all = [...this.#lists.values()].flat();
    this.#lists.clear();
    this.#idle = 0;
    return all;
  }
}
