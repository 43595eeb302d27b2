/**
 * The large benchmark model: Qwen2.5-0.5B's shape (d 896, 24 layers, 14
 * query heads over 2 key/value heads of dimension 64, MLP 4864, vocabulary
 * 151,936, q/k/v biases, tied embeddings, rope theta 1e6) with random
 * weights, kept in bf16 as the published checkpoint is. LoRA rank 16
 * (alpha 32) on the attention and MLP projections, Bios's default on a tied
 * model (the head is left alone). The Python peers build the same shape from
 * {@linkcode largePeerSpec}.
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import { narrowToHalf } from "../kernels/half.ts";
import {
  type LlamaConfig,
  llamaTensorShapes,
  toHfConfig,
} from "../model/config.ts";
import { LoraSet, type LoraSpec } from "../model/lora.ts";
import { Prng } from "../model/prng.ts";
import { Stage } from "../model/stage.ts";
import {
  type NamedTensors,
  splitLayers,
  uploadStage,
} from "../model/stage_weights.ts";
import { BENCH_ADAM } from "./bench_model.ts";

/** Qwen2.5-0.5B's shape. */
export const LARGE_CONFIG: LlamaConfig = {
  hiddenSize: 896,
  intermediateSize: 4864,
  numLayers: 24,
  numHeads: 14,
  numKvHeads: 2,
  headDim: 64,
  vocabSize: 151_936,
  rmsNormEps: 1e-6,
  ropeTheta: 1_000_000,
  qkvBias: true,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 4096,
  bosTokenId: 151_643,
  eosTokenIds: [151_645],
};

/** Rank 16, alpha 32 on q, k, v, o, gate, up and down (no head: the model is tied). */
export const LARGE_LORA: LoraSpec = {
  rank: 16,
  alpha: 32,
  dropout: 0,
  targets: [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
  ],
  seed: 0,
};

/**
 * Base weights in bf16: N(0, 0.02) matrices and biases, norm gains 1
 * (Hugging Face's initialisation), deterministic for a seed.
 */
export function largeTensors(cfg = LARGE_CONFIG, seed = 1): NamedTensors {
  const rng = new Prng(seed);
  const out: NamedTensors = new Map();
  for (const [name, shape] of llamaTensorShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith("norm.weight")) {
      data.fill(1);
      out.set(name, { shape, data });
      continue;
    }
    rng.fillNormal(data, 0, 0.02);
    out.set(name, { shape, data: narrowToHalf(data, "bf16") });
  }
  return out;
}

/** The whole model as one stage with fresh adapters on `be`. */
export function buildLargeStage(
  be: Backend,
  cfg = LARGE_CONFIG,
  spec = LARGE_LORA,
): { stage: Stage; lora: LoraSet } {
  const [range] = splitLayers(cfg.numLayers, 1);
  const weights = uploadStage(be, cfg, largeTensors(cfg), range);
  const lora = LoraSet.create(be, cfg, spec, range);
  return { stage: new Stage(be, cfg, range, weights, lora), lora };
}

/** What the Python peers need to build the same model and step. */
export function largePeerSpec(): Record<string, unknown> {
  return {
    ...toHfConfig(LARGE_CONFIG),
    "lora_rank": LARGE_LORA.rank,
    "lora_alpha": LARGE_LORA.alpha,
    "lora_targets": LARGE_LORA.targets,
    adam: BENCH_ADAM,
  };
}

/** The peak resident memory of this process so far (VmHWM), in bytes. */
export function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(
    Deno.readTextFileSync("/proc/self/status"),
  );
  return m ? Number(m[1]) * 1024 : NaN;
}
