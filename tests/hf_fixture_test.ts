/**
 * Bios against transformers itself: checkpoints that transformers' own
 * classes wrote (`scripts/make_hf_fixtures.py`, transformers 5), and the
 * log-probabilities transformers computed for a fixed batch. Bios reads the
 * folder as a user's download and must give the same log-probabilities on
 * the reference backend.
 */
import assert from "node:assert/strict";
import type { Backend } from "../kernels/backend.ts";
import { CpuBackend } from "../kernels/cpu/backend.ts";
import { openNativeBackend } from "../kernels/native/backend.ts";
import { testBackend } from "../kernels/webgpu/_open_for_test.ts";
import { parseLlamaConfig } from "../model/config.ts";
import { readSafetensorsFile } from "../model/safetensors.ts";
import { LoraSet, type LoraTarget } from "../model/lora.ts";
import { Stage } from "../model/stage.ts";
import { splitLayers, uploadStage } from "../model/stage_weights.ts";

const ROOT = new URL("./fixtures/hf/", import.meta.url).pathname;

/** Bios's logprobs are within 1e-4 of transformers' (max |Δ|). */
function assertLogprobsMatch(got: Float32Array, want: number[]): void {
  assert.equal(got.length, want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    worst = Math.max(worst, Math.abs(got[i] - want[i]));
  }
  assert.ok(worst < 1e-4, `max |Δ logprob| ${worst}`);
}

async function logprobsOf(name: string, be: Backend = new CpuBackend()) {
  const dir = `${ROOT}${name}`;
  const cfg = parseLlamaConfig(
    JSON.parse(await Deno.readTextFile(`${dir}/model/config.json`)),
  );
  const io = JSON.parse(await Deno.readTextFile(`${dir}/io.json`)) as {
    tokens: number[][];
    targets: number[][];
    logprobs: number[][];
  };
  const tensors = new Map(
    [...(await readSafetensorsFile(`${dir}/model/model.safetensors`)).tensors]
      .map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }]),
  );
  const range = splitLayers(cfg.numLayers, 1)[0];
  const stage = new Stage(be, cfg, range, uploadStage(be, cfg, tensors, range));
  const B = io.tokens.length, T = io.tokens[0].length;
  const { out } = stage.forward(
    be.fromInts(Int32Array.from(io.tokens.flat()), [B * T]),
    { batch: B, seqLen: T },
    be.fromInts(Int32Array.from(io.targets.flat()), [B * T]),
  );
  return { cfg, got: await be.read(out), want: io.logprobs.flat() };
}

Deno.test("a Llama saved by transformers 5 with rope_theta 500000 (in rope_parameters) gives transformers' logprobs", async () => {
  const { cfg, got, want } = await logprobsOf("llama_theta500k");
  assert.equal(
    cfg.ropeTheta,
    500000,
    "rope_theta is read from rope_parameters",
  );
  assertLogprobsMatch(got, want);
});

Deno.test("a Llama with Llama 3's RoPE scaling (every frequency band) gives transformers' logprobs", async () => {
  const { cfg, got, want } = await logprobsOf("llama3_scaling");
  assert.equal(cfg.ropeScaling?.type, "llama3");
  assertLogprobsMatch(got, want);
});

Deno.test("a Qwen3 (per-head q/k norms, head_dim apart from hidden/heads, tied) gives transformers' logprobs", async () => {
  const { cfg, got, want } = await logprobsOf("qwen3_tied");
  assert.equal(cfg.qkNorm, true);
  assert.equal(cfg.headDim, 16);
  assert.equal(cfg.tieWordEmbeddings, true);
  assertLogprobsMatch(got, want);
});

Deno.test("a Qwen2 / Qwen2.5 (q/k/v biases, tied) gives transformers' logprobs", async () => {
  const { cfg, got, want } = await logprobsOf("qwen2_tied");
  assert.equal(cfg.qkvBias, true);
  assertLogprobsMatch(got, want);
});

// Every fixture on the other backends too (the cpu cases are above).
const others: [string, () => Backend | null | Promise<Backend | null>][] = [
  ["native", () => openNativeBackend()],
  ["webgpu", () => testBackend()],
];
const required = Deno.env.get("BIOS_REQUIRE_ALL") === "1";
for (const [name, make] of others) {
  const be = await make();
  if (!be && !required) {
    console.log(
      `transformers fixtures on ${name} skipped: backend unavailable`,
    );
  }
  for (
    const fixture of [
      "llama_theta500k",
      "llama3_scaling",
      "qwen2_tied",
      "qwen3_tied",
    ]
  ) {
    Deno.test({
      name: `${fixture} gives transformers' logprobs on ${name}`,
      ignore: !be && !required,
      fn: async () => {
        if (!be) throw new Error(`${name} backend unavailable`);
        const { got, want } = await logprobsOf(fixture, be);
        assertLogprobsMatch(got, want);
      },
    });
  }
}

/**
 * Bios's LoRA gradients for the fixture's PEFT adapter (r 4, alpha 8 on the
 * attention and MLP projections), for the loss −Σ log p(target), against
 * the gradients PEFT computed in float64: for each tensor, the largest |Δ|
 * over the tensor's largest |gradient| (Bios computes in float32, so small
 * elements of a tensor carry the rounding of its large ones); the worst
 * tensor's.
 */
async function loraGradError(name: string, be: Backend): Promise<number> {
  const dir = `${ROOT}${name}`;
  const cfg = parseLlamaConfig(
    JSON.parse(await Deno.readTextFile(`${dir}/model/config.json`)),
  );
  const io = JSON.parse(await Deno.readTextFile(`${dir}/io.json`)) as {
    tokens: number[][];
    targets: number[][];
  };
  const host = async (file: string) =>
    new Map(
      [...(await readSafetensorsFile(file)).tensors].map((
        [k, t],
      ) => [k, { shape: t.shape, data: t.data as Float32Array }]),
    );
  const tensors = await host(`${dir}/model/model.safetensors`);
  const adapter = await host(`${dir}/peft/adapter_model.safetensors`);
  const want = await host(`${dir}/peft_grads.safetensors`);
  const peftCfg = JSON.parse(
    await Deno.readTextFile(`${dir}/peft/adapter_config.json`),
  );
  const spec = {
    rank: peftCfg.r,
    alpha: peftCfg.lora_alpha,
    dropout: 0,
    targets: [...peftCfg.target_modules].sort() as LoraTarget[],
    seed: 0,
  };
  const range = splitLayers(cfg.numLayers, 1)[0];
  const lora = LoraSet.fromHost(be, cfg, spec, { ...range }, adapter);
  const stage = new Stage(
    be,
    cfg,
    range,
    uploadStage(be, cfg, tensors, range),
    lora,
  );
  const B = io.tokens.length, T = io.tokens[0].length;
  const { ctx } = stage.forward(
    be.fromInts(Int32Array.from(io.tokens.flat()), [B * T]),
    { batch: B, seqLen: T },
    be.fromInts(Int32Array.from(io.targets.flat()), [B * T]),
    0,
  );
  stage.backward(ctx, be.fromArray(new Float32Array(B * T).fill(-1), [B * T]));
  assert.equal(lora.keys.length, want.size, "one gradient per adapter tensor");
  let worst = 0;
  for (const key of lora.keys) {
    const got = await be.read(lora.grads.get(key)!);
    const w = want.get(key);
    assert.ok(w, `PEFT has no gradient for ${key}`);
    let scale = 0, diff = 0;
    for (let i = 0; i < got.length; i++) {
      scale = Math.max(scale, Math.abs(w.data[i]));
      diff = Math.max(diff, Math.abs(got[i] - w.data[i]));
    }
    assert.ok(scale > 0, `${key}: PEFT's gradient is zero`);
    worst = Math.max(worst, diff / scale);
  }
  return worst;
}

const gradBackends: [string, () => Backend | null | Promise<Backend | null>][] =
  [
    ["cpu", () => new CpuBackend()],
    ["native", () => openNativeBackend()],
    ["webgpu", () => testBackend()],
  ];
for (const [name, make] of gradBackends) {
  const be = await make();
  for (
    const fixture of [
      "llama_theta500k",
      "llama3_scaling",
      "qwen2_tied",
      "qwen3_tied",
    ]
  ) {
    Deno.test({
      name: `${fixture}: LoRA gradients match PEFT's on ${name}`,
      ignore: !be && !required,
      fn: async () => {
        if (!be) throw new Error(`${name} backend unavailable`);
        const err = await loraGradError(fixture, be);
        console.log(
          `${fixture} on ${name}: LoRA gradients vs PEFT, max |Δ| / max |g| per tensor ${
            err.toExponential(2)
          }`,
        );
        assert.ok(err < 1e-4, `max relative error ${err}`);
      },
    });
  }
}
