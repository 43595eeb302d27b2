/**
 * generate(): the prompt's prefill runs once for all samples (their caches
 * and first logits copied from it), so every sample continues as it would
 * alone: greedy samples of a batch equal the greedy sample of batch 1, over
 * two chained stages, with an adapter, with and without a repetition
 * penalty; and sampled continuations keep their seeded determinism.
 */
import assert from "node:assert/strict";
import { CpuBackend } from "../kernels/cpu/backend.ts";
import { randomModel, TINY_CFG } from "./_tiny_model.ts";
import { generate } from "./generate.ts";
import { LORA_TARGETS, LoraSet } from "./lora.ts";
import { Stage } from "./stage.ts";
import { splitLayers, uploadStage } from "./stage_weights.ts";

const cfg = TINY_CFG;

const be = new CpuBackend();
const tensors = randomModel(7, cfg, 0.5);
const stages = splitLayers(cfg.numLayers, 2).map((r) => {
  const lora = LoraSet.create(be, cfg, {
    rank: 2,
    alpha: 4,
    dropout: 0,
    targets: LORA_TARGETS,
    seed: 5,
  }, r);
  // A non-zero adapter (B starts at 0): the samples must go through it.
  for (const w of lora.params.values()) {
    const d = new Float32Array(w.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < d.length; i++) d[i] = 0.2 * Math.sin(i + 1);
    be.write(w, d);
  }
  return new Stage(be, cfg, r, uploadStage(be, cfg, tensors, r), lora);
});
const prompt = [1, 4, 7, 9, 3];
const base = {
  maxTokens: 12,
  seed: 3,
  stopTokens: [] as number[],
  topK: -1,
  topP: 1,
};

Deno.test("generate: greedy samples of a batch equal batch 1's, the prefill shared", async () => {
  for (const repetitionPenalty of [1, 1.8]) {
    const one = await generate(be, stages, prompt, {
      ...base,
      numSamples: 1,
      temperature: 0,
      repetitionPenalty,
    });
    const many = await generate(be, stages, prompt, {
      ...base,
      numSamples: 3,
      temperature: 0,
      repetitionPenalty,
    });
    assert.equal(many.length, 3);
    for (const s of many) {
      assert.deepEqual(s.tokens, one[0].tokens, `penalty ${repetitionPenalty}`);
      assert.deepEqual(s.logprobs, one[0].logprobs);
    }
    // Not a degenerate model: the continuation moves.
    assert.ok(new Set(one[0].tokens).size > 1, `${one[0].tokens}`);
  }
});

Deno.test("generate: sampled continuations of a batch are seeded and differ from each other", async () => {
  const opts = { ...base, numSamples: 4, temperature: 1.2 };
  const a = await generate(be, stages, prompt, opts);
  const b = await generate(be, stages, prompt, opts);
  assert.deepEqual(a, b);
  assert.ok(new Set(a.map((s) => s.tokens.join())).size > 1);
});
