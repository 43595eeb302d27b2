/**
 * A tiny random model for the model layer's tests: C 16, 2 layers, H 2,
 * G 1, D 8, F 24, V 11, untied head.
 *
 * @module
 */
import { type LlamaConfig, llamaTensorShapes } from "./config.ts";
import { Prng } from "./prng.ts";
import type { NamedTensors } from "./stage_weights.ts";

/** The tiny model's config. */
export const TINY_CFG: LlamaConfig = {
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 8,
  vocabSize: 11,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: false,
  maxPositionEmbeddings: 64,
  eosTokenIds: [2],
} as LlamaConfig;

/** Seeded weights of `c`: norm gains near 1, the rest N(0, std). */
export function randomModel(
  seed: number,
  c: LlamaConfig = TINY_CFG,
  std = 0.3,
): NamedTensors {
  const rng = new Prng(seed);
  const out: NamedTensors = new Map();
  for (const [name, shape] of llamaTensorShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const norm = name.endsWith("norm.weight");
    for (let i = 0; i < n; i++) {
      data[i] = norm ? 1 + 0.1 * rng.normal() : std * rng.normal();
    }
    out.set(name, { shape, data });
  }
  return out;
}
