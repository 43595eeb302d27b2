/**
 * Killing a run's trainer at any moment loses no acknowledged step and
 * applies none twice: the supervisor starts a new trainer on the run's
 * journal, it restores the shards to the commit point and replays what
 * followed, the client sends the operations that got no answer again under
 * their seqs, and the journal answers those already applied. Losses, weights
 * and Adam moments are bit-identical to an uninterrupted run.
 */
import assert from "node:assert/strict";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
} from "./_helpers.ts";
import { shardAddress, trainerAddress } from "../actors/trainer.ts";
import type { ShardState } from "../actors/param_shard.ts";
import { Prng } from "../model/prng.ts";

const STEPS = 8;
const RUN = { baseModel: TINY, rank: 4, seed: 13, dropout: 0.1 } as const;
const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));

/** Train STEPS steps; with `kill`, brutally kill the trainer at random moments meanwhile. */
async function train(
  kill: boolean,
): Promise<{ losses: number[]; state: ShardState[]; kills: number }> {
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient(RUN);
    const conn = await ts.service.connection();
    const addr = trainerAddress(tc.runId);
    const rng = new Prng(9);
    let kills = 0;
    // In-process messages run on microtasks: the killer waits a random
    // number of microtask turns, so kills land inside operations.
    const killAfter = async (turns: number) => {
      for (let i = 0; i < turns; i++) await null;
      if (!conn.system.liveActors().includes(addr)) return;
      const stopped = await conn.system.stop(addr, {
        reason: { kind: "killed" },
        shutdown: "brutal_kill",
      }).then(() => true, () => false);
      if (stopped) kills++;
    };
    const losses: number[] = [];
    const killers: Promise<void>[] = [];
    for (let s = 0; s < STEPS; s++) {
      if (kill) killers.push(killAfter(rng.nextInt(400)));
      const fb = tc.forwardBackward(batch, "cross_entropy");
      const fb2 = tc.forwardBackward(batch.slice(1), "cross_entropy");
      const opt = tc.optimStep({ learningRate: 1e-2 });
      losses.push((await fb).loss, (await fb2).loss);
      assert.equal((await opt).metrics["step:max"], s + 1);
    }
    await Promise.all(killers);
    await tc.forward(batch, "cross_entropy");
    const info = await tc.getInfo();
    assert.equal(info.step, STEPS, "every acknowledged step applied once");
    assert.equal(info.lastSeq, 3 * STEPS + 1);
    const state: ShardState[] = [];
    for (let i = 0; i < info.shards; i++) {
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

Deno.test("Trainer: killing the trainer mid-run gives bit-identical losses, weights and Adam state", async () => {
  const clean = await train(false);
  const crashed = await train(true);
  console.log(`trainer kills during the crashed run: ${crashed.kills}`);
  assert.ok(crashed.kills >= 3, `expected several kills, got ${crashed.kills}`);
  assert.deepEqual(crashed.losses, clean.losses);
  for (let i = 0; i < clean.state.length; i++) {
    assert.equal(crashed.state[i].step, clean.state[i].step);
    for (const part of ["params", "m", "v"] as const) {
      const a = clean.state[i][part]!, b = crashed.state[i][part]!;
      for (const k of Object.keys(a)) {
        assert.deepEqual(b[k].data, a[k].data, `shard ${i} ${part} ${k}`);
      }
    }
  }
});

Deno.test("Trainer: after a trainer restart between operations the same client goes on, and old seqs are answered from the record", async () => {
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient(RUN);
    const conn = await ts.service.connection();
    const first = await tc.forwardBackward(batch, "cross_entropy");
    await tc.optimStep({ learningRate: 1e-2 });
    const addr = trainerAddress(tc.runId);
    await conn.system.stop(addr, {
      reason: { kind: "killed" },
      shutdown: "brutal_kill",
    });
    // The supervisor restarts it; the client's next seq (3) just works.
    const next = await tc.forwardBackward(batch, "cross_entropy");
    assert.ok(next.loss < first.loss, `${next.loss} < ${first.loss}`);
    const info = await tc.getInfo();
    assert.equal(info.step, 1);
    assert.equal(info.lastSeq, 3);
    // seq 1, replayed by hand, gets its original reply.
    const replay = await conn.system.ref(addr).ask<typeof first>({
      type: "forward_backward",
      runId: tc.runId,
      seq: 1,
      data: batch,
      lossFn: "cross_entropy",
    });
    assert.equal(replay.loss, first.loss);
    assert.equal((await tc.getInfo()).lastSeq, 3);
  } finally {
    await ts.close();
  }
});
