/**
 * AdamW through the API: gradients accumulate over forwardBackward calls until
 * optimStep; gradClipNorm clips the global norm as torch's clip_grad_norm_
 * does; weightDecay is decoupled; optimStep without gradients is refused.
 */
import assert from "node:assert/strict";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
} from "./_helpers.ts";
import { ConflictError } from "../runtime/errors.ts";
import type { TrainingClient } from "../mod.ts";

const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));

async function probe(tc: TrainingClient): Promise<number> {
  return (await tc.forward(batch, "cross_entropy")).loss;
}

Deno.test("optimStep: gradients accumulate over forwardBackward calls until the step", async () => {
  const ts = await startTestService();
  try {
    const make = () =>
      ts.service.createLoraTrainingClient({
        baseModel: TINY,
        rank: 4,
        seed: 3,
      });
    const [a, b] = [await make(), await make()];
    // a: the whole batch at once; b: the same data in two calls.
    await a.forwardBackward(batch, "cross_entropy");
    await a.optimStep({ learningRate: 1e-2 });
    await b.forwardBackward(batch.slice(0, 1), "cross_entropy");
    await b.forwardBackward(batch.slice(1), "cross_entropy");
    await b.optimStep({ learningRate: 1e-2 });
    const la = await probe(a), lb = await probe(b);
    assert.ok(Math.abs(la - lb) / Math.abs(la) < 1e-5, `${la} vs ${lb}`);
    // And a third client that steps after only half the data moves differently.
    const c = await make();
    await c.forwardBackward(batch.slice(0, 1), "cross_entropy");
    await c.optimStep({ learningRate: 1e-2 });
    assert.ok(Math.abs((await probe(c)) - la) > 1e-3);
  } finally {
    await ts.close();
  }
});

Deno.test("optimStep: gradClipNorm scales the gradient to the clip norm, as clip_grad_norm_", async () => {
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient({
      baseModel: TINY,
      rank: 4,
      seed: 3,
    });
    await tc.forwardBackward(batch, "cross_entropy");
    const r = await tc.optimStep({ learningRate: 1e-2, gradClipNorm: 0.5 });
    const norm = r.metrics["grad_norm:mean"];
    assert.ok(norm > 0.5, `the unclipped norm ${norm} should exceed the clip`);
    assert.ok(
      Math.abs(r.metrics["grad_scale:mean"] - 0.5 / (norm + 1e-6)) < 1e-12,
    );
    // A clip above the norm leaves the gradient alone.
    await tc.forwardBackward(batch, "cross_entropy");
    const r2 = await tc.optimStep({ learningRate: 1e-2, gradClipNorm: 1e9 });
    assert.equal(r2.metrics["grad_scale:mean"], 1);
  } finally {
    await ts.close();
  }
});

Deno.test("optimStep: weightDecay shrinks the adapter (decoupled) and changes the result", async () => {
  const ts = await startTestService();
  try {
    const make = () =>
      ts.service.createLoraTrainingClient({
        baseModel: TINY,
        rank: 4,
        seed: 3,
      });
    const plain = await make(), decayed = await make();
    for (const [tc, wd] of [[plain, 0], [decayed, 0.5]] as const) {
      for (let i = 0; i < 3; i++) {
        await tc.forwardBackward(batch, "cross_entropy");
        await tc.optimStep({ learningRate: 1e-2, weightDecay: wd });
      }
    }
    const conn = await ts.connection();
    const norm = async (tc: TrainingClient) => {
      const snap = await conn.system.ref(`trainer.${tc.runId}`).ask<
        { params: Record<string, { data: Float32Array }> }
      >({ type: "snapshot", runId: tc.runId });
      let s = 0;
      for (const t of Object.values(snap.params)) {
        for (const v of t.data) s += v * v;
      }
      return Math.sqrt(s);
    };
    assert.ok(
      await norm(decayed) < await norm(plain),
      "decay makes the adapter smaller",
    );
  } finally {
    await ts.close();
  }
});

Deno.test("optimStep without accumulated gradients is refused and changes nothing", async () => {
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient({
      baseModel: TINY,
      rank: 4,
      seed: 3,
    });
    const before = await probe(tc);
    await assert.rejects(
      () => tc.optimStep({ learningRate: 1e-2 }).result(),
      ConflictError,
    );
    assert.equal((await tc.getInfo()).step, 0);
    assert.equal(await probe(tc), before);
  } finally {
    await ts.close();
  }
});
