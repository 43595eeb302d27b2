/**
 * `dataParallel`: a run's batch split over pipeline replicas, their LoRA
 * gradients summed in replica order before each step. Replicas end every
 * step bit-identical; a run with one micro-batch per replica and one
 * forwardBackward per step is bit-identical to the same run on one
 * pipeline; otherwise the two differ by float32 summation order only.
 */
import assert from "node:assert/strict";
import { startTestService } from "./_helpers.ts";
import {
  assertSameState,
  type DpScript,
  SAMPLE_BATCH,
  trainDp,
} from "./_dp_run.ts";

async function run(script: DpScript, microBatchTokens?: number) {
  const ts = await startTestService({ microBatchTokens });
  try {
    return await trainDp(ts.service, ts.connection, script);
  } finally {
    await ts.close();
  }
}

Deno.test("dataParallel 2: one micro-batch per replica gives bit-identical losses, weights and Adam state to one pipeline", async () => {
  // microBatchTokens 1: every datum is a micro-batch of its own, so one
  // pipeline sums g₀ + g₁ exactly as two replicas do (dropout keys too).
  const script = {
    steps: 3,
    batches: [SAMPLE_BATCH.slice(0, 2)],
    dropout: 0.1,
  };
  const one = await run({ ...script, dataParallel: 1 }, 1);
  const two = await run({ ...script, dataParallel: 2 }, 1);
  assert.deepEqual(two.losses, one.losses);
  assertSameState(two.state[0], one.state[0], "replica 0 vs one pipeline");
  assertSameState(two.state[1], two.state[0], "replica 1 vs replica 0");
});

Deno.test("dataParallel 3 vs 1: the same run up to float32 summation order", async () => {
  // Three datums, two forwardBackwards a step, default micro-batches: one
  // pipeline sums each micro-batch's rows in one product, three replicas
  // add per-replica sums afterwards.
  const script = { steps: 3 };
  const one = await run({ ...script, dataParallel: 1 });
  const three = await run({ ...script, dataParallel: 3 });
  assert.equal(three.losses.length, one.losses.length);
  three.losses.forEach((l, i) =>
    assert.ok(
      Math.abs(l - one.losses[i]) <= 1e-5 * Math.abs(one.losses[i]),
      `loss ${i}: ${l} vs ${one.losses[i]}`,
    )
  );
  assertSameState(
    three.state[0],
    one.state[0],
    "3 replicas vs one pipeline",
    (x) => 1e-4 * Math.abs(x) + 1e-5,
  );
  for (const r of [1, 2]) {
    assertSameState(three.state[r], three.state[0], `replica ${r} vs 0`);
  }
});
