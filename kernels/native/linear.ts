/**
 * The LoRA linear layer with the adapter folded into the weight, for the
 * native backend:
 *
 *   W' = W + scale · B A                 [out,in]
 *   y  = x W'ᵀ,  xa = x Aᵀ               (forward)
 *   dx = dy W',  da = scale · (dy B)ᵀ x,  db = scale · dyᵀ xa   (backward)
 *
 * the same maths as ../cpu/linear.ts (y = x Wᵀ + scale · (x Aᵀ) Bᵀ,
 * dx = dy W + scale · (dy B) A) in other roundings. It trades the two rank-R
 * products that re-read and re-write y and dx (memory-bound, [N,out] and
 * [N,in] each way) for one pass over W: a gain once N is large next to R, so
 * small batches (decode) keep the unfused composition.
 *
 * @module
 */

import type { GemmFn } from "../cpu/gemm.ts";
import {
  linearBackward,
  linearForward,
  type LoraArrays,
} from "../cpu/linear.ts";
import { type WeightArray, widenInto } from "../cpu/weight.ts";
import {
  FEW_ROWS,
  gemmWeightT,
  productByBlocks,
  type WeightProduct,
} from "../cpu/half_gemm.ts";
import { SimdKernels } from "./simd_kernels.ts";

let widener: SimdKernels | undefined;

/**
 * x wᵀ as ../cpu/half_gemm.ts's gemmWeightT, with a bf16 w and few rows
 * widened block by block by the WebAssembly SIMD kernels (in their memory,
 * where OpenBLAS reads the block in place).
 */
export const nativeWeightProduct: WeightProduct = (
  gemm,
  y,
  x,
  w,
  n,
  outF,
  inF,
) => {
  if (w instanceof Float32Array || w.format !== "bf16" || n > FEW_ROWS) {
    return gemmWeightT(gemm, y, x, w, n, outF, inF);
  }
  widener ??= new SimdKernels();
  const simd = widener;
  productByBlocks(
    gemm,
    y,
    x,
    n,
    outF,
    inF,
    (r0, m) => simd.widenBf16(w.bits, r0 * inF, m * inF, 0),
  );
};

/** Rows from which the adapter is folded into W (below: unfused products). */
export const FOLD_MIN_ROWS = 256;

/** W' of the last call, reused across calls (ops run one at a time). */
let scratch = new Float32Array(0);

/** W' = W + scale · B A in the shared scratch array. */
function folded(
  gemm: GemmFn,
  w: WeightArray,
  lora: LoraArrays,
  inF: number,
  outF: number,
): Float32Array {
  if (scratch.length < outF * inF) scratch = new Float32Array(outF * inF);
  const wf = scratch.length === outF * inF
    ? scratch
    : scratch.subarray(0, outF * inF);
  widenInto(wf, w);
  gemm(wf, lora.b, lora.a, outF, inF, lora.rank, false, false, lora.scale, 1);
  return wf;
}

/**
 * Fills y [N,out] (and xa [N,R] when `lora` is given); the signature of
 * ../cpu/linear.ts's linearForward.
 */
export function linearForwardFolded(
  gemm: GemmFn,
  y: Float32Array,
  xa: Float32Array | null,
  x: Float32Array,
  w: WeightArray,
  lora: LoraArrays | null,
  n: number,
  inF: number,
  outF: number,
): void {
  if (lora === null || xa === null || n < FOLD_MIN_ROWS) {
    return linearForward(
      gemm,
      y,
      xa,
      x,
      w,
      lora,
      n,
      inF,
      outF,
      nativeWeightProduct,
    );
  }
  // y = x W'ᵀ;  xa = x Aᵀ (kept for db)
  gemm(y, x, folded(gemm, w, lora, inF, outF), n, outF, inF, false, true, 1, 0);
  gemm(xa, x, lora.a, n, lora.rank, inF, false, true, 1, 0);
}

/**
 * Fills dx [N,in], and with LoRA da [R,in] and db [out,R]; the signature of
 * ../cpu/linear.ts's linearBackward.
 */
export function linearBackwardFolded(
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
  if (
    lora === null || xa === null || dyb === null || da === null ||
    db === null || n < FOLD_MIN_ROWS
  ) {
    return linearBackward(
      gemm,
      dx,
      da,
      db,
      dy,
      x,
      w,
      lora,
      xa,
      dyb,
      n,
      inF,
      outF,
    );
  }
  const r = lora.rank;
  // dx = dy W'
  gemm(
    dx,
    dy,
    folded(gemm, w, lora, inF, outF),
    n,
    inF,
    outF,
    false,
    false,
    1,
    0,
  );
  // dyb = dy B;  da = scale · dybᵀ x;  db = scale · dyᵀ xa
  gemm(dyb, dy, lora.b, n, r, outF, false, false, 1, 0);
  gemm(da, dyb, x, r, inF, n, true, false, lora.scale, 0);
  gemm(db, dy, xa, outF, r, n, true, false, lora.scale, 0);
}
