/**
 * Killing a parameter shard at any moment loses no acknowledged step and
 * applies none twice: the trainer restores every shard to the last committed
 * state, replays the forward_backward ops since then, and retries. The run's
 * losses and its final LoRA weights and Adam moments are bit-identical to an
 * uninterrupted run (the K1 case of reliability-anchors.md §6).
 */
import assert from "node:assert/strict";
import { TINY } from "./_helpers.ts";
import { shardAddress } from "../actors/trainer.ts";
import { assertSameRun, trainWhileKilling } from "./_killed_run.ts";

const opts = {
  run: { baseModel: TINY, rank: 4, seed: 11, dropout: 0.1 },
  steps: 10,
  seed: 5,
  maxTurns: 300,
} as const;

Deno.test("Trainer: killing shards mid-run gives bit-identical losses, weights and Adam state", async () => {
  const clean = await trainWhileKilling({ ...opts, target: null });
  const crashed = await trainWhileKilling({
    ...opts,
    target: (runId, shards, rng) => shardAddress(runId, rng.nextInt(shards)),
  });
  console.log(`shard kills during the crashed run: ${crashed.kills}`);
  assert.ok(crashed.kills >= 3, `expected several kills, got ${crashed.kills}`);
  assertSameRun(crashed, clean);
});
