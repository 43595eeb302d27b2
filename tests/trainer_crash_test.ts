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
import { trainerAddress } from "../actors/trainer.ts";
import { assertSameRun, trainWhileKilling } from "./_killed_run.ts";

const RUN = { baseModel: TINY, rank: 4, seed: 13, dropout: 0.1 } as const;
const opts = { run: RUN, steps: 8, seed: 9, maxTurns: 400 } as const;
const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));

Deno.test("Trainer: killing the trainer mid-run gives bit-identical losses, weights and Adam state", async () => {
  const clean = await trainWhileKilling({ ...opts, target: null });
  const crashed = await trainWhileKilling({
    ...opts,
    target: (runId) => trainerAddress(runId),
  });
  console.log(`trainer kills during the crashed run: ${crashed.kills}`);
  assert.ok(crashed.kills >= 3, `expected several kills, got ${crashed.kills}`);
  assertSameRun(crashed, clean);
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
