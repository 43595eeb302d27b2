/**
 * Where a run's parameter shards go: spread over the live members that host
 * shards, so a run's pipeline stages (and its replicas) land on different
 * node processes when the cluster has several.
 *
 * @module
 */
import type { Member, RunPlacement } from "../protocol/node_messages.ts";

/**
 * The placement of a run whose trainer is on `host`: shard (replica r,
 * stage s), the k-th with k = r · stages + s, goes to the k-th node of the
 * cycle `host`, then the other members that are up and host shards, least
 * loaded first (ties to the lowest id). One member (the embedded node) keeps
 * every shard with the trainer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { placeShards } from "./run_placement.ts";
 * import type { Member } from "../protocol/node_messages.ts";
 * const m = (id: string, load = 0): Member => ({
 *   id, address: `node.${id}`, roles: ["trainer", "shard"], state: "up",
 *   capacity: { cpus: 1, memoryBytes: 0 }, load, runs: [], samplers: [], beatMs: 1000,
 * });
 * const at = placeShards(m("b"), [m("a", 1), m("b"), m("c")], 2, 2);
 * assert.deepEqual(at.shards, [["node.b", "node.c"], ["node.a", "node.b"]]);
 * ```
 */
export function placeShards(
  host: Member,
  members: readonly Member[],
  stages: number,
  replicas: number,
): RunPlacement {
  const others = members.filter((m) =>
    m.id !== host.id && m.state === "up" && m.roles.includes("shard")
  ).sort((a, b) => a.load - b.load || (a.id < b.id ? -1 : 1));
  const nodes = [host, ...others];
  return {
    node: host.address,
    shards: Array.from(
      { length: replicas },
      (_, r) =>
        Array.from(
          { length: stages },
          (_, s) => nodes[(r * stages + s) % nodes.length].address,
        ),
    ),
  };
}
