/**
 * A FIFO queue for an actor's pending messages. Amortised O(1) push and
 * shift, so a burst of thousands of messages does not go quadratic.
 *
 * @module
 */

/**
 * First in, first out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Mailbox } from "./mailbox.ts";
 * const box = new Mailbox<string>();
 * box.push("a");
 * box.push("b");
 * assert.equal(box.shift(), "a");
 * assert.equal(box.length, 1);
 * ```
 */
export class Mailbox<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  /** Number of queued items. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Appends an item. */
  push(item: T): void {
    this.#items.push(item);
  }

  /** Removes and returns the oldest item, or `undefined` when empty. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    // Compact once the dead prefix dominates, keeping shifts amortised O(1).
    if (this.#head > 64 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Removes and returns every queued item, oldest first. */
  drain(): T[] {
    const rest = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}
