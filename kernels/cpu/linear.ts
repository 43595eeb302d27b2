/**
 * Linear layer with an optional LoRA adapter, composed from matrix products.
 *
 * Shapes: x [N,in], w [out,in], a [R,in], b [out,R], xa [N,R], y [N,out].
 *
 * Forward:  y = x wᵀ + scale · (x aᵀ) bᵀ
 * Backward: dx = dy w + scale · (dy b) a;  da = scale · (dy b)ᵀ x;
 *           db = scale · dyᵀ (x aᵀ).  w is frozen (no dw).
 *
 * The products go through a {@linkcode GemmFn}, so a faster backend (OpenBLAS)
 * reuses this composition unchanged.
 *
 * @module
 */

import type { GemmFn } from "./gemm.ts";
import { type WeightArray, wideWeight } from "./weight.ts";
import { gemmWeightT, type WeightProduct } from "./half_gemm.ts";

/** LoRA factors as raw arrays: a [R,in], b [out,R], rank R, and scale = alpha / R. */
export interface LoraArrays {
  /** [R, in] */
  a: Float32Array;
  /** [out, R] */
  b: Float32Array;
  /** R */
  rank: number;
  /** alpha / R */
  scale: number;
}

/**
 * Fills y [N,out] (and xa [N,R] when `lora` is given); `product` makes
 * x wᵀ (a faster host backend passes its own for 16-bit weights).
 */
export function linearForward(
  gemm: GemmFn,
  y: Float32Array,
  xa: Float32Array | null,
  x: Float32Array,
  w: WeightArray,
  lora: LoraArrays | null,
  n: number,
  inF: number,
  outF: number,
  product: WeightProduct = gemmWeightT,
): void {
  // y = x wᵀ
  product(gemm, y, x, w, n, outF, inF);
  if (lora === null || xa === null) return;
  // xa = x aᵀ
  gemm(xa, x, lora.a, n, lora.rank, inF, false, true, 1, 0);
  // y += scale · xa bᵀ
  gemm(y, xa, lora.b, n, outF, lora.rank, false, true, lora.scale, 1);
}

/**
 * Fills dx [N,in], and with LoRA da [R,in] and db [out,R]; `xa` is the forward's
 * x aᵀ [N,R], `dyb` a scratch [N,R].
 */
export function linearBackward(
  gemm: GemmFn,
  dx: Float32Array,
  da: Float32Array | null,
  db: Float32Array | null,
  dy: Float32Array,
  x: Float32Array,
  w: WeightArray,
  lora: LoraArrays | null,
  xa: Float32Array | null,
  dyb: Float32Array | null,
  n: number,
  inF: number,
  outF: number,
): void {
  // forward: y = x wᵀ  →  dx = dy w
  gemm(dx, dy, wideWeight(w), n, inF, outF, false, false, 1, 0);
  if (
    lora === null || xa === null || dyb === null || da === null || db === null
  ) {
    return;
  }
  const r = lora.rank;
  // forward: y += scale · xa bᵀ, xa = x aᵀ
  // dyb = dy b  [N,R]
  gemm(dyb, dy, lora.b, n, r, outF, false, false, 1, 0);
  // dx += scale · dyb a
  gemm(dx, dyb, lora.a, n, inF, r, false, false, lora.scale, 1);
  // da = scale · dybᵀ x  [R,in]
  gemm(da, dyb, x, r, inF, n, true, false, lora.scale, 0);
  // db = scale · dyᵀ xa  [out,R]
  gemm(db, dy, xa, outF, r, n, true, false, lora.scale, 0);
}
