/**
 * Killing a parameter shard at any moment loses no acknowledged step and
 * applies none twice: the trainer restores every shard to the last committed
 * state, replays the forward_backward ops since then, and retries. The run's
 * losses and its final LoRA weights and Adam moments are bit-identical to an
 * uninterrupted run (the K1 case of reliability-anchors.md §6).
 */
import assert from "node:assert/strict";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
} from "./_helpers.ts";
import { shardAddress } from "../actors/trainer.ts";
import type { ShardState } from "../actors/param_shard.ts";
import { Prng } from "../model/prng.ts";

const STEPS = 10;
const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));

/** Train STEPS steps; with `kill`, brutally kill random shards at random moments meanwhile. */
async function train(
  kill: boolean,
): Promise<{ losses: number[]; state: ShardState[]; kills: number }> {
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient({
      baseModel: TINY,
      rank: 4,
      seed: 11,
      dropout: 0.1,
    });
    const conn = await ts.service.connection();
    const shards = (await tc.getInfo()).shards;
    const rng = new Prng(5);
    let kills = 0;
    // Compute and in-process messages run on microtasks, so timers would not
    // fire mid-operation: the killer waits a random number of microtask turns.
    const killAfter = async (turns: number, shard: number) => {
      for (let i = 0; i < turns; i++) await null;
      const addr = shardAddress(tc.runId, shard);
      if (!conn.system.liveActors().includes(addr)) return;
      // It may be stopping already (an earlier kill): then this kill does not count.
      const stopped = await conn.system.stop(addr, {
        reason: { kind: "killed" },
        shutdown: "brutal_kill",
      })
        .then(() => true, () => false);
      if (stopped) kills++;
    };
    const losses: number[] = [];
    const killers: Promise<void>[] = [];
    for (let s = 0; s < STEPS; s++) {
      if (kill) killers.push(killAfter(rng.nextInt(300), rng.nextInt(shards)));
      const fb = tc.forwardBackward(batch, "cross_entropy");
      const fb2 = tc.forwardBackward(batch.slice(1), "cross_entropy");
      const opt = tc.optimStep({ learningRate: 1e-2 });
      losses.push((await fb).loss, (await fb2).loss);
      assert.equal((await opt).metrics["step:max"], s + 1);
    }
    await Promise.all(killers);
    // A kill may land after the last op: one more op through the trainer
    // brings any restarted shard back to the committed state before we look.
    await tc.forward(batch, "cross_entropy");
    const info = await tc.getInfo();
    assert.equal(
      info.step,
      STEPS,
      "every acknowledged step applied exactly once",
    );
    const state: ShardState[] = [];
    for (let i = 0; i < shards; i++) {
      state.push(
        await conn.system.ref(shardAddress(tc.runId, i)).ask({
          type: "get_state",
          optimizer: true,
        }),
      );
    }
    return { losses, state, kills };
  } finally {
    await ts.close();
  }
}

Deno.test("Trainer: killing shards mid-run gives bit-identical losses, weights and Adam state", async () => {
  const clean = await train(false);
  const crashed = await train(true);
  console.log(`shard kills during the crashed run: ${crashed.kills}`);
  assert.ok(crashed.kills >= 3, `expected several kills, got ${crashed.kills}`);
  assert.deepEqual(crashed.losses, clean.losses);
  assert.equal(crashed.state.length, clean.state.length);
  for (let i = 0; i < clean.state.length; i++) {
    assert.equal(crashed.state[i].step, clean.state[i].step);
    for (const part of ["params", "m", "v"] as const) {
      const a = clean.state[i][part]!, b = crashed.state[i][part]!;
      assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
      for (const k of Object.keys(a)) {
        assert.deepEqual(
          b[k].data,
          a[k].data,
          `shard ${i} ${part} ${k} differs`,
        );
      }
    }
  }
});
