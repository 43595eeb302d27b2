/**
 * The benchmark model: a small Llama (d 256, 4 layers, 4 query heads over 2
 * key/value heads of dimension 64, MLP 688, byte vocabulary 259, untied head)
 * with LoRA rank 16 (alpha 32) on every linear layer, Bios's default targets.
 * The PyTorch peer gets the same shape through {@linkcode peerSpec}.
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import {
  type LlamaConfig,
  llamaTensorShapes,
  toHfConfig,
} from "../model/config.ts";
import { LORA_TARGETS, LoraSet, type LoraSpec } from "../model/lora.ts";
import { Prng } from "../model/prng.ts";
import { Stage } from "../model/stage.ts";
import {
  type NamedTensors,
  splitLayers,
  uploadStage,
} from "../model/stage_weights.ts";

/** The benchmark model's shape. */
export const BENCH_CONFIG: LlamaConfig = {
  hiddenSize: 256,
  intermediateSize: 688,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 64,
  vocabSize: 259,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: false,
  maxPositionEmbeddings: 512,
  bosTokenId: 256,
  eosTokenIds: [257],
};

/** The benchmark adapter: rank 16, alpha 32, no dropout, every linear layer. */
export const BENCH_LORA: LoraSpec = {
  rank: 16,
  alpha: 32,
  dropout: 0,
  targets: LORA_TARGETS,
  seed: 0,
};

/** AdamW settings of a benchmark step (the anchor's defaults with lr 1e-4), on both sides. */
export const BENCH_ADAM = {
  lr: 1e-4,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weightDecay: 0,
} as const;

/** The model's name in the benchmark's catalog file (actor path). */
export const BENCH_MODEL_NAME = "bench/llama-d256-l4";

/**
 * Base weights as Hugging Face initialises a Llama: N(0, 0.02) for every
 * matrix, ones for the norm gains. Deterministic for a seed.
 */
export function benchTensors(cfg: LlamaConfig, seed = 1): NamedTensors {
  const rng = new Prng(seed);
  const out: NamedTensors = new Map();
  for (const [name, shape] of llamaTensorShapes(cfg)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 1) data.fill(1);
    else rng.fillNormal(data, 0, 0.02);
    out.set(name, { shape, data });
  }
  return out;
}

/** `n` token ids drawn uniformly from the 256 byte tokens. */
export function benchTokens(n: number, seed: number): Int32Array {
  const rng = new Prng(seed);
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = rng.nextInt(256);
  return ids;
}

/** The whole model as one pipeline stage with fresh adapters, on `be`. */
export function buildBenchStage(
  be: Backend,
  cfg: LlamaConfig = BENCH_CONFIG,
  spec: LoraSpec = BENCH_LORA,
): { stage: Stage; lora: LoraSet } {
  const [range] = splitLayers(cfg.numLayers, 1);
  const weights = uploadStage(be, cfg, benchTensors(cfg), range);
  const lora = LoraSet.create(be, cfg, spec, range);
  return { stage: new Stage(be, cfg, range, weights, lora), lora };
}

/**
 * What the PyTorch peer needs to build the same model: the Hugging Face config
 * plus the LoRA rank and alpha, and the AdamW settings.
 */
export function peerSpec(
  cfg: LlamaConfig = BENCH_CONFIG,
  spec: LoraSpec = BENCH_LORA,
): Record<string, unknown> {
  return {
    ...toHfConfig(cfg),
    lora_rank: spec.rank,
    lora_alpha: spec.alpha,
    adam: BENCH_ADAM,
  };
}
