/**
 * The Llama + LoRA model against PyTorch: logits, target logprobs, the summed
 * cross-entropy loss and every LoRA gradient, from fixtures made by
 * `scripts/make_golden.py` (see tests/fixtures/golden/README.md).
 */
import assert from "node:assert/strict";
import type { Backend } from "../kernels/backend.ts";
import { CpuBackend } from "../kernels/cpu/backend.ts";
import { openNativeBackend } from "../kernels/native/backend.ts";
import { testBackend } from "../kernels/webgpu/_open_for_test.ts";
import { parseLlamaConfig } from "../model/config.ts";
import { LORA_TARGETS, LoraSet } from "../model/lora.ts";
import { readSafetensorsFile } from "../model/safetensors.ts";
import { Stage } from "../model/stage.ts";
import { splitLayers, uploadStage } from "../model/stage_weights.ts";

const ROOT = new URL("./fixtures/golden/", import.meta.url).pathname;

/** Largest |a − b| / max(|b|, floor) over all elements. */
function maxRelError(a: Float32Array, b: Float32Array, floor: number): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(
      worst,
      Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor),
    );
  }
  return worst;
}

async function f32(path: string) {
  const m = (await readSafetensorsFile(path)).tensors;
  return m;
}

async function checkFixture(name: string, be: Backend, shards: number) {
  const dir = `${ROOT}${name}`;
  const cfg = parseLlamaConfig(
    JSON.parse(await Deno.readTextFile(`${dir}/model/config.json`)),
  );
  const adapterCfg = JSON.parse(
    await Deno.readTextFile(`${dir}/adapter/adapter_config.json`),
  );
  const base = await f32(`${dir}/model/model.safetensors`);
  const adapter = await f32(`${dir}/adapter/adapter_model.safetensors`);
  const io = await f32(`${dir}/io.safetensors`);
  const tensors = new Map(
    [...base].map((
      [k, t],
    ) => [k, { shape: t.shape, data: t.data as Float32Array }]),
  );
  const lora = new Map(
    [...adapter].map((
      [k, t],
    ) => [k, { shape: t.shape, data: t.data as Float32Array }]),
  );
  const spec = {
    rank: adapterCfg.r,
    alpha: adapterCfg.lora_alpha,
    dropout: 0,
    targets: LORA_TARGETS,
    seed: 0,
  };
  const [B, T] = io.get("tokens")!.shape;
  const rows = { batch: B, seqLen: T };
  const stages = splitLayers(cfg.numLayers, shards).map((range) =>
    new Stage(
      be,
      cfg,
      range,
      uploadStage(be, cfg, tensors, range),
      LoraSet.fromHost(be, cfg, spec, { ...range }, lora),
    )
  );
  // Forward through the chain; keep the logits of the last stage.
  let x = be.fromInts(io.get("tokens")!.data as Int32Array, [B * T]);
  const ctxs = [];
  for (const s of stages) {
    const targets = s.range.head
      ? be.fromInts(io.get("targets")!.data as Int32Array, [B * T])
      : undefined;
    const { out, ctx } = s.forward(x, rows, targets);
    ctxs.push(ctx);
    x = out;
  }
  const last = ctxs[ctxs.length - 1];
  const logits = await be.read(last.head!.logits.y);
  const logprobs = await be.read(x);
  const w = io.get("weights")!.data as Float32Array;
  let loss = 0;
  for (let i = 0; i < w.length; i++) loss -= logprobs[i] * w[i];
  const errLogits = maxRelError(
    logits,
    io.get("logits")!.data as Float32Array,
    1e-2,
  );
  const errLp = maxRelError(
    logprobs,
    io.get("logprobs")!.data as Float32Array,
    1e-2,
  );
  const wantLoss = (io.get("loss")!.data as Float32Array)[0];
  const errLoss = Math.abs(loss - wantLoss) / Math.abs(wantLoss);
  // Backward: cross-entropy with weights w has dL/dlogprob = −w.
  let d = be.fromArray(w.map((v) => -v), [B * T]);
  for (let i = stages.length - 1; i >= 0; i--) {
    const dx = stages[i].backward(ctxs[i], d);
    be.free(d);
    if (dx) d = dx;
  }
  let errGrad = 0;
  let checked = 0;
  for (const s of stages) {
    for (const [key, g] of await s.lora!.toHost("grads")) {
      const want = io.get(`grad.${key}`);
      assert.ok(want, `fixture lacks grad.${key}`);
      errGrad = Math.max(
        errGrad,
        maxRelError(g.data, want.data as Float32Array, 1e-3),
      );
      checked++;
    }
  }
  assert.equal(checked, adapter.size, "every adapter tensor has a gradient");
  console.log(
    `golden ${name} on ${be.name} (${shards} stage${
      shards > 1 ? "s" : ""
    }): max rel error logits ${errLogits.toExponential(2)}, logprobs ${
      errLp.toExponential(2)
    }, loss ${errLoss.toExponential(2)}, LoRA grads ${
      errGrad.toExponential(2)
    }`,
  );
  // f32 compute (any reduction order) against an f64 reference: 2e-4 on logits, 1e-4 on
  // logprobs, 1e-5 on the loss, 1e-3 on gradients (relative, with floors).
  assert.ok(errLogits < 2e-4, `logits rel error ${errLogits}`);
  assert.ok(errLp < 1e-4, `logprobs rel error ${errLp}`);
  assert.ok(errLoss < 1e-5, `loss rel error ${errLoss}`);
  assert.ok(errGrad < 1e-3, `LoRA gradient rel error ${errGrad}`);
}

const backends: [string, () => Backend | null | Promise<Backend | null>][] = [
  ["cpu", () => new CpuBackend()],
  ["native", () => openNativeBackend()],
  ["webgpu", () => testBackend()],
];

for (const [name, make] of backends) {
  const be = await make();
  const pkg = name === "webgpu"
    ? "mesa-vulkan-drivers"
    : "libopenblas0-pthread";
  const required = Deno.env.get("BIOS_REQUIRE_ALL") === "1";
  if (!be && !required) {
    console.log(
      `golden tests on ${name} skipped: backend unavailable (apt-get install ${pkg})`,
    );
  }
  for (const fixture of ["untied", "tied"]) {
    for (const shards of [1, 2]) {
      Deno.test({
        name:
          `golden: ${fixture} Llama + LoRA matches PyTorch on ${name}, ${shards} stage(s)`,
        ignore: !be && !required,
        fn: async () => {
          if (!be) {
            throw new Error(
              `${name} backend unavailable (apt-get install ${pkg})`,
            );
          }
          await checkFixture(fixture, be, shards);
        },
      });
    }
  }
}
