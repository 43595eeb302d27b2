/**
 * Base weights kept in 16 bits (bf16 and f16) on every backend: a model whose
 * matrices are uploaded as 16-bit bits trains and samples bit-identically to
 * the same values uploaded as f32 (the ops widen exactly), with a tied head
 * and with an untied one, through two pipeline stages.
 */
import assert from "node:assert/strict";
import type { Backend } from "../kernels/backend.ts";
import { type HalfFormat, halfToF32, narrowToHalf } from "../kernels/half.ts";
import { TEST_BACKENDS } from "./_backends.ts";
import { generate } from "../model/generate.ts";
import { LORA_TARGETS, LoraSet } from "../model/lora.ts";
import { Stage } from "../model/stage.ts";
import {
  type NamedTensors,
  splitLayers,
  uploadStage,
} from "../model/stage_weights.ts";
import type { LlamaConfig } from "../model/config.ts";
import { tinyConfig } from "./_helpers.ts";
import { randomTensors, trainSteps } from "./_train_steps.ts";

const spec = { rank: 4, alpha: 8, dropout: 0, targets: LORA_TARGETS, seed: 3 };
const rows = { batch: 2, seqLen: 10 };

/** The model's matrices in `format` (norms stay f32), and the same values as f32. */
function models(
  cfg: LlamaConfig,
  format: HalfFormat,
): { half: NamedTensors; wide: NamedTensors } {
  const half: NamedTensors = new Map(), wide: NamedTensors = new Map();
  for (const [name, t] of randomTensors(cfg, 8)) {
    const f = t.data as Float32Array;
    if (t.shape.length === 1) {
      half.set(name, t);
      wide.set(name, t);
      continue;
    }
    const bits = narrowToHalf(f, format);
    half.set(name, { shape: t.shape, data: bits });
    wide.set(name, { shape: t.shape, data: halfToF32(bits) });
  }
  return { half, wide };
}

function stages(be: Backend, cfg: LlamaConfig, tensors: NamedTensors) {
  return splitLayers(cfg.numLayers, 2).map((r) =>
    new Stage(
      be,
      cfg,
      r,
      uploadStage(be, cfg, tensors, r),
      LoraSet.create(be, cfg, spec, r),
    )
  );
}

async function run(be: Backend, cfg: LlamaConfig, tensors: NamedTensors) {
  const n = rows.batch * rows.seqLen;
  const ids = Int32Array.from({ length: n }, (_, i) => (i * 7 + 3) % 256);
  const targets = Int32Array.from({ length: n }, (_, i) => (i * 5 + 1) % 256);
  const trained = await trainSteps(
    be,
    stages(be, cfg, tensors),
    ids,
    targets,
    rows,
    2,
  );
  const sampled = await generate(be, stages(be, cfg, tensors), [256, 4, 9], {
    numSamples: 2,
    maxTokens: 6,
    temperature: 0.9,
    topK: -1,
    topP: 1,
    seed: 5,
    stopTokens: [],
  });
  return { ...trained, tokens: sampled.map((s) => s.tokens) };
}

for (const [name, make, pkg] of TEST_BACKENDS) {
  const be = await make();
  const required = Deno.env.get("BIOS_REQUIRE_ALL") === "1";
  if (!be && !required) {
    console.log(
      `16-bit weights on ${name} skipped: unavailable (apt-get install ${pkg})`,
    );
  }
  for (const tied of [false, true]) {
    for (const format of ["bf16", "f16"] as const) {
      Deno.test({
        name: `${name}: ${format} base weights (${
          tied ? "tied" : "untied"
        } head) train and sample bit-identically to their f32 values`,
        ignore: !be && !required,
        fn: async () => {
          if (!be) {
            throw new Error(
              `${name} backend unavailable (apt-get install ${pkg})`,
            );
          }
          const cfg = { ...tinyConfig(), tieWordEmbeddings: tied };
          const { half, wide } = models(cfg, format);
          const kept = uploadStage(be, cfg, half, splitLayers(2, 1)[0]);
          assert.equal(kept.layers[0].q.dtype, format, "kept in 16 bits");
          assert.equal(kept.lmHead!.dtype, format);
          const a = await run(be, cfg, half), b = await run(be, cfg, wide);
          assert.deepEqual(a.losses, b.losses);
          for (const [k, v] of b.params) {
            assert.deepEqual(a.params.get(k), v, k);
          }
          assert.deepEqual(a.tokens, b.tokens);
          assert.ok(a.losses[1] < a.losses[0], "the loss falls");
        },
      });
    }
  }
}
