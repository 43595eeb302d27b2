/**
 * Rotary position embedding in Hugging Face Llama's rotate-half layout.
 *
 * Shapes: x, out [B·T, H·D] (row r is a token at position offset + (r mod T));
 * each head's D values split into halves: pair (i, i + D/2), i < D/2.
 *
 * Angles follow transformers' LlamaRotaryEmbedding in float32:
 * inv_freq_i = 1 / theta^(2i/D), angle = f32(position · inv_freq_i),
 * and cos/sin rounded to f32:
 *   out_i       = x_i cos − x_{i+D/2} sin
 *   out_{i+D/2} = x_{i+D/2} cos + x_i sin
 * The inverse rotates by −angle; it is the transpose, hence the backward.
 *
 * @module
 */

import { ropeInvFreq, type RopeScaling } from "../rope_freq.ts";

const f32 = Math.fround;

/** RoPE dimensions: T, H, D, the position of row 0 and the frequency base. */
export interface RopeDims {
  /** T: rows per sequence. */
  seqLen: number;
  /** H: heads in a row. */
  heads: number;
  /** D: head dimension (even). */
  headDim: number;
  /** Position of each sequence's first row. */
  offset: number;
  /** Frequency base (10000 for Llama 2, 500000 for Llama 3). */
  theta: number;
  /** Llama 3's frequency scaling, when the model has it. */
  scaling?: RopeScaling;
}

/** cos and sin tables [T, D/2] for positions offset … offset+T−1. */
export function ropeTables(
  dims: RopeDims,
): { cos: Float32Array; sin: Float32Array } {
  const half = dims.headDim / 2;
  const cos = new Float32Array(dims.seqLen * half);
  const sin = new Float32Array(dims.seqLen * half);
  const invFreq = ropeInvFreq(dims.headDim, dims.theta, dims.scaling);
  for (let t = 0; t < dims.seqLen; t++) {
    const pos = dims.offset + t;
    for (let i = 0; i < half; i++) {
      const angle = f32(pos * invFreq[i]);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * out = rope(x) over `rows` rows (inverse: rotate by −angle, the backward).
 * out may alias x.
 */
export function ropeForward(
  out: Float32Array,
  x: Float32Array,
  rows: number,
  dims: RopeDims,
  inverse: boolean,
): void {
  const { cos, sin } = ropeTables(dims);
  const d = dims.headDim;
  const half = d / 2;
  const width = dims.heads * d;
  const sign = inverse ? -1 : 1;
  for (let r = 0; r < rows; r++) {
    const t = (r % dims.seqLen) * half;
    for (let h = 0; h < dims.heads; h++) {
      const o = r * width + h * d;
      for (let i = 0; i < half; i++) {
        const c = cos[t + i];
        const s = sign * sin[t + i];
        const x1 = x[o + i];
        const x2 = x[o + i + half];
        out[o + i] = x1 * c - x2 * s;
        out[o + i + half] = x2 * c + x1 * s;
      }
    }
  }
}

/**
 * Backward of {@linkcode ropeForward}: forward was out = R x (a rotation), so
 * dx = Rᵀ dout = rope(dout, inverse).
 */
export function ropeBackward(
  dx: Float32Array,
  dout: Float32Array,
  rows: number,
  dims: RopeDims,
): void {
  ropeForward(dx, dout, rows, dims, true);
}
