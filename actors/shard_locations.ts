/**
 * Where this node's runs' remote shards are now: each `RemoteShard` child
 * writes its shard's node when it starts it (again, elsewhere, after its
 * node died), and the run's trainer reads it for `get_info`'s `placement`.
 * One per node, shared by the run trees it hosts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ShardLocations } from "./shard_locations.ts";
 * const at = new ShardLocations();
 * at.set("shard.run-1.1", "node.s1");
 * at.set("shard.run-1.1", "node.s2"); // moved
 * assert.equal(at.get("shard.run-1.1"), "node.s2");
 * at.forget("shard.run-1.1", "node.s1"); // an older start's: kept
 * assert.equal(at.get("shard.run-1.1"), "node.s2");
 * ```
 *
 * @module
 */

/** The node (`node.<id>`) of each remote shard address. */
export class ShardLocations {
  readonly #at = new Map<string, string>();

  /** Shard `address` runs on `node` now. */
  set(address: string, node: string): void {
    this.#at.set(address, node);
  }

  /** The node shard `address` runs on, if a remote shard started it here. */
  get(address: string): string | undefined {
    return this.#at.get(address);
  }

  /** Shard `address` no longer runs on `node` (its remote shard stopped). */
  forget(address: string, node: string): void {
    if (this.#at.get(address) === node) this.#at.delete(address);
  }
}
