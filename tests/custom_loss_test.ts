/**
 * forwardBackwardCustom: a loss written in TypeScript drives the same step
 * as the built-in one it imitates, a signed gradient pushes logprobs down,
 * its metrics come back, and a malformed return is refused by name.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
} from "./_helpers.ts";

const RUN = { baseModel: TINY, rank: 4, seed: 31 } as const;
const data = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));
const sum = (lps: Float32Array[]) =>
  lps.reduce((s, lp) => s + lp.reduce((a, b) => a + b, 0), 0);

Deno.test("forwardBackwardCustom: −Σ logprob by hand takes the same step as cross_entropy", async () => {
  const ts = await startTestService();
  try {
    const plain = await ts.service.createLoraTrainingClient(RUN);
    const fb = await plain.forwardBackward(data, "cross_entropy");
    await plain.optimStep({ learningRate: 1e-2 });
    const plainAfter = (await plain.forward(data, "cross_entropy")).loss;

    const custom = await ts.service.createLoraTrainingClient(RUN);
    const out = await custom.forwardBackwardCustom(data, (_d, lps) => ({
      loss: -sum(lps),
      grads: lps.map((lp) => lp.map(() => -1)),
      metrics: { "custom:sum": 7 },
    }));
    assert.ok(Math.abs(out.loss - fb.loss) < 1e-6 * Math.abs(fb.loss));
    assert.equal(out.metrics["custom:sum"], 7);
    await custom.optimStep({ learningRate: 1e-2 });
    assert.equal(
      (await custom.forward(data, "cross_entropy")).loss,
      plainAfter,
    );
  } finally {
    await ts.close();
  }
});

Deno.test("forwardBackwardCustom: a signed gradient (+Σ logprob) pushes logprobs down", async () => {
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient(RUN);
    const before = (await tc.forward(data, "cross_entropy")).loss;
    await tc.forwardBackwardCustom(data, (_d, lps) => ({
      loss: sum(lps),
      grads: lps.map((lp) => lp.map(() => 1)),
    }));
    await tc.optimStep({ learningRate: 1e-2 });
    const after = (await tc.forward(data, "cross_entropy")).loss;
    assert.ok(
      after > before,
      `unlearning raises the loss: ${before} → ${after}`,
    );
    await assert.rejects(
      () =>
        tc.forwardBackwardCustom(data, (_d, lps) => ({
          loss: 0,
          grads: lps.map((lp) => new Float32Array(lp.length + 1)),
        })).result(),
      (e: Error & { field?: string }) => {
        assert.ok(e instanceof bios.errors.InvalidArgumentError, e.message);
        assert.equal(e.field, "lossFn.grads[0]");
        return true;
      },
    );
  } finally {
    await ts.close();
  }
});
