/**
 * RoPE's inverse frequencies, shared by every backend so they all rotate by
 * the same angles: `inv_freq_i = 1 / theta^(2i/D)` in float32, as
 * transformers computes them, optionally rescaled as Llama 3 does
 * (`rope_type: "llama3"`: low frequencies divided by `factor`, a smooth
 * blend between `lowFreqFactor` and `highFreqFactor`).
 *
 * @module
 */

/** Llama 3's frequency scaling (transformers' `_compute_llama3_parameters`). */
export interface RopeScaling {
  /** Always "llama3". */
  type: "llama3";
  /** How much the low frequencies are slowed. */
  factor: number;
  /** Wavelengths above `originalMaxPositionEmbeddings / lowFreqFactor` are divided by `factor`. */
  lowFreqFactor: number;
  /** Wavelengths below `originalMaxPositionEmbeddings / highFreqFactor` are kept. */
  highFreqFactor: number;
  /** The context the model was first trained with. */
  originalMaxPositionEmbeddings: number;
}

const f32 = Math.fround;

/**
 * The D/2 inverse frequencies of RoPE with base `theta`, scaled by
 * `scaling` when given, every step rounded to float32 as in transformers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ropeInvFreq } from "./rope_freq.ts";
 * assert.equal(ropeInvFreq(4, 10000)[0], 1);
 * ```
 */
export function ropeInvFreq(
  headDim: number,
  theta: number,
  scaling?: RopeScaling,
): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    inv[i] = f32(1 / f32(Math.pow(theta, f32((2 * i) / headDim))));
  }
  if (!scaling) return inv;
  const { factor, lowFreqFactor: low, highFreqFactor: high } = scaling;
  const old = scaling.originalMaxPositionEmbeddings;
  const lowWavelen = f32(old / low);
  const highWavelen = f32(old / high);
  for (let i = 0; i < half; i++) {
    const wavelen = f32(f32(2 * Math.PI) / inv[i]);
    const scaled = wavelen > lowWavelen ? f32(inv[i] / factor) : inv[i];
    if (wavelen < highWavelen || wavelen > lowWavelen) {
      inv[i] = scaled;
      continue;
    }
    const smooth = f32(f32(f32(old / wavelen) - low) / f32(high - low));
    inv[i] = f32(
      f32(f32(f32(1 - smooth) * scaled) / factor) + f32(smooth * scaled),
    );
  }
  return inv;
}

/** A cache key for the frequencies of (headDim, theta, scaling). */
export function ropeKey(
  headDim: number,
  theta: number,
  scaling?: RopeScaling,
): string {
  return scaling
    ? `${headDim}|${theta}|${scaling.factor}|${scaling.lowFreqFactor}|${scaling.highFreqFactor}|${scaling.originalMaxPositionEmbeddings}`
    : `${headDim}|${theta}`;
}
