/**
 * The shard crash test with two pipeline replicas (`dataParallel: 2`):
 * killing any shard of either replica at any moment — inside a
 * forwardBackward, the gradients' sum over replicas, the optimizer step or
 * the copy of replica 0's new state to replica 1 — loses no acknowledged
 * step and applies none twice. The losses and every shard's final LoRA and
 * Adam state (both replicas) are bit-identical to an uninterrupted run;
 * so are they when the trainer is killed instead (its successor restores
 * both replicas from the journal's commit point and replays).
 */
import assert from "node:assert/strict";
import { TINY } from "./_helpers.ts";
import { shardAddress, trainerAddress } from "../protocol/addresses.ts";
import { assertSameRun, trainWhileKilling } from "./_killed_run.ts";

// With this kill schedule, kills land (as measured here) inside the sum of
// the replicas' gradients three times and inside the copy to replica 1 once.
const opts = {
  run: { baseModel: TINY, rank: 4, seed: 11, dropout: 0.1, dataParallel: 2 },
  steps: 10,
  seed: 2,
  maxTurns: 300,
} as const;

Deno.test("Trainer, dataParallel 2: killing shards of either replica mid-run gives bit-identical losses, weights and Adam state", async () => {
  const clean = await trainWhileKilling({ ...opts, target: null });
  const replicas = new Set<number>();
  const crashed = await trainWhileKilling({
    ...opts,
    target: (runId, shards, rng) => {
      const r = rng.nextInt(2);
      replicas.add(r);
      return shardAddress(runId, rng.nextInt(shards), r);
    },
  });
  console.log(`shard kills during the crashed run: ${crashed.kills}`);
  assert.ok(crashed.kills >= 3, `expected several kills, got ${crashed.kills}`);
  assert.deepEqual([...replicas].sort(), [0, 1], "both replicas were hit");
  assertSameRun(crashed, clean);
});

Deno.test("Trainer, dataParallel 2: killing the trainer mid-run gives bit-identical losses, weights and Adam state", async () => {
  const run = { ...opts, steps: 6 };
  const clean = await trainWhileKilling({ ...run, target: null });
  const crashed = await trainWhileKilling({
    ...run,
    target: (runId) => trainerAddress(runId),
  });
  console.log(`trainer kills during the crashed run: ${crashed.kills}`);
  assert.ok(crashed.kills >= 3, `expected several kills, got ${crashed.kills}`);
  assertSameRun(crashed, clean);
});
