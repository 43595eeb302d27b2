/**
 * A whole model on the WebGPU backend with a 64 KiB binding limit, so its
 * embedding table, LM head, logits and LM-head LoRA factor are split over
 * several buffers: two training steps (forward, backward with adapter
 * dropout, AdamW) and a short generation match the same backend unsplit.
 * Tolerance (as tests/backend_parity_test.ts against the cpu): losses within
 * 1e-5 relative, LoRA weights within 1e-3 relative (floor 1e-3); generated
 * tokens equal. Only the sums that the split cuts (products over the
 * vocabulary, the log-softmax sums) differ from the unsplit run.
 */
import assert from "node:assert/strict";
import { halfToF32, narrowToHalf } from "../kernels/half.ts";
import type { Backend } from "../kernels/backend.ts";
import {
  haveAdapter,
  testBackend,
  testBackendWithLimit,
} from "../kernels/webgpu/_open_for_test.ts";
import type { GpuTensor } from "../kernels/webgpu/tensor.ts";
import type { LlamaConfig } from "../model/config.ts";
import { generate } from "../model/generate.ts";
import { LORA_TARGETS, LoraSet } from "../model/lora.ts";
import { Stage } from "../model/stage.ts";
import {
  type NamedTensors,
  splitLayers,
  uploadStage,
} from "../model/stage_weights.ts";

import { randomTensors, trainSteps } from "./_train_steps.ts";
const LIMIT = 64 * 1024;

// C 64, V 2000: the table and LM head [2000, 64] (500 KiB), the logits
// [24, 2000] (188 KiB) and the LM-head LoRA B [2000, 16] (125 KiB) all split
// at 64 KiB; every activation of the layers fits.
const cfg: LlamaConfig = {
  hiddenSize: 64,
  intermediateSize: 128,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  vocabSize: 2000,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: false,
  maxPositionEmbeddings: 64,
  eosTokenIds: [2],
} as LlamaConfig;

const base: NamedTensors = randomTensors(cfg, 5);
const spec = {
  rank: 16,
  alpha: 32,
  dropout: 0.1,
  targets: LORA_TARGETS,
  seed: 4,
};
const rows = { batch: 2, seqLen: 12 };
const N = rows.batch * rows.seqLen;
const ids = Int32Array.from({ length: N }, (_, i) => (i * 137 + 11) % 2000);
const targets = Int32Array.from({ length: N }, (_, i) => (i * 311 + 5) % 2000);

/** Two training steps through two stages: losses, final LoRA weights, and whether weights split. */
async function train(be: Backend, tensors: NamedTensors = base) {
  const stages = splitLayers(cfg.numLayers, 2).map((r) =>
    new Stage(
      be,
      cfg,
      r,
      uploadStage(be, cfg, tensors, r),
      LoraSet.create(be, cfg, spec, r),
    )
  );
  const split = [
    stages[0].weights.embed!,
    stages[1].weights.lmHead!,
    stages[1].lora!.params.get("base_model.model.lm_head.lora_B.weight")!,
  ].map((t) => (t as GpuTensor).split);
  const { losses, params } = await trainSteps(
    be,
    stages,
    ids,
    targets,
    rows,
    2,
  );
  const range = splitLayers(cfg.numLayers, 1)[0];
  const sampler = new Stage(
    be,
    cfg,
    range,
    uploadStage(be, cfg, tensors, range),
  );
  const samples = await generate(be, [sampler], [7, 1500, 42, 999], {
    numSamples: 3,
    maxTokens: 6,
    temperature: 0.8,
    topK: 50,
    topP: 0.95,
    seed: 4,
    stopTokens: [],
  });
  return { losses, params, split, tokens: samples.map((s) => s.tokens) };
}

const whole = await testBackend();
const limited = await testBackendWithLimit(LIMIT);
if (haveAdapter(whole) && limited) {
  Deno.test({
    name:
      "webgpu at a 64 KiB binding limit: bf16 weights split into blocks give the f32 values' results exactly",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const half: NamedTensors = new Map(), wide: NamedTensors = new Map();
      for (const [name, t] of base) {
        if (t.shape.length === 1) {
          half.set(name, t);
          wide.set(name, t);
          continue;
        }
        const bits = narrowToHalf(t.data as Float32Array, "bf16");
        half.set(name, { shape: t.shape, data: bits });
        wide.set(name, { shape: t.shape, data: halfToF32(bits) });
      }
      const got = await train(limited, half), want = await train(limited, wide);
      assert.deepEqual(got.split, [true, true, true]);
      assert.deepEqual(got.losses, want.losses);
      for (const [k, w] of want.params) assert.deepEqual(got.params.get(k), w);
      assert.deepEqual(got.tokens, want.tokens);
    },
  });
  Deno.test({
    name:
      "webgpu at a 64 KiB binding limit: training steps and sampling match the unsplit backend",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const want = await train(whole);
      const got = await train(limited);
      assert.deepEqual(want.split, [false, false, false]);
      assert.deepEqual(
        got.split,
        [true, true, true],
        "embed, lm_head, lora_B split",
      );
      got.losses.forEach((l, i) =>
        assert.ok(
          Math.abs(l - want.losses[i]) <= 1e-5 * Math.abs(want.losses[i]),
          `step ${i + 1} loss ${l}, unsplit ${want.losses[i]}`,
        )
      );
      let worst = 0;
      for (const [k, w] of want.params) {
        const g = got.params.get(k)!;
        for (let i = 0; i < w.length; i++) {
          worst = Math.max(
            worst,
            Math.abs(g[i] - w[i]) / Math.max(Math.abs(w[i]), 1e-3),
          );
        }
      }
      console.log(
        `split vs unsplit: LoRA weights after 2 steps, max rel error ${
          worst.toExponential(2)
        }`,
      );
      assert.ok(worst < 1e-3, `LoRA weights max rel error ${worst}`);
      assert.deepEqual(got.tokens, want.tokens);
    },
  });
}
