/**
 * Products with a frozen weight that may be 16-bit, for the host backends.
 *
 * For many rows (training) the whole weight is widened once into a scratch
 * and multiplied as float32: the widening is one pass over W against N
 * passes of the product. For few rows (decoding, N ≤ {@linkcode FEW_ROWS})
 * that pass would cost more than the product itself, so W is widened a block
 * of its rows at a time into a small cache-resident array, each block
 * multiplied as it is made: W is read once, in 16 bits.
 *
 * @module
 */
import { widenHalf } from "../half.ts";
import type { GemmFn } from "./gemm.ts";
import { type WeightArray, wideWeight } from "./weight.ts";

/** Rows of x up to which a 16-bit W is widened block by block. */
export const FEW_ROWS = 32;

/** Elements of W widened per block (512 KiB as float32: an L2's worth). */
const BLOCK_ELEMENTS = 1 << 17;

let wBlock: Float32Array = new Float32Array(0);
let yBlock: Float32Array = new Float32Array(0);

function grow(a: Float32Array, n: number): Float32Array {
  return a.length >= n ? a : new Float32Array(n);
}

/**
 * y [n,outF] = x [n,inF] · wᵀ with w [outF,inF] float32 or 16-bit: the
 * signature of {@linkcode gemmWeightT}, which a faster host backend replaces.
 */
export type WeightProduct = (
  gemm: GemmFn,
  y: Float32Array,
  x: Float32Array,
  w: WeightArray,
  n: number,
  outF: number,
  inF: number,
) => void;

/**
 * y [n,outF] = x [n,inF] · wᵀ, w [outF,inF] (float32 or 16-bit): the
 * float32 product of w's exact float32 values, computed per block of w's
 * rows when n is small (each y element is still one dot product of a row of
 * x with a row of w; the BLAS may order its sum differently by block size).
 */
export const gemmWeightT: WeightProduct = (gemm, y, x, w, n, outF, inF) => {
  if (w instanceof Float32Array || n > FEW_ROWS || inF === 0) {
    gemm(y, x, wideWeight(w), n, outF, inF, false, true, 1, 0);
    return;
  }
  const rows = blockRows(outF, inF);
  wBlock = grow(wBlock, rows * inF);
  productByBlocks(gemm, y, x, n, outF, inF, (r0, m) => {
    const wb = wBlock.subarray(0, m * inF);
    widenHalf(w, wb, r0 * inF, m * inF);
    return wb;
  });
};

/** Rows of W a block holds (at least one). */
export function blockRows(outF: number, inF: number): number {
  return Math.max(1, Math.min(outF, Math.floor(BLOCK_ELEMENTS / inF)));
}

/**
 * y = x · Wᵀ a block of W's rows at a time: `block(r0, m)` gives rows
 * r0 … r0 + m − 1 of W as float32 (m ≤ {@linkcode blockRows}).
 */
export function productByBlocks(
  gemm: GemmFn,
  y: Float32Array,
  x: Float32Array,
  n: number,
  outF: number,
  inF: number,
  block: (r0: number, m: number) => Float32Array,
): void {
  const rows = blockRows(outF, inF);
  yBlock = grow(yBlock, n * rows);
  for (let r0 = 0; r0 < outF; r0 += rows) {
    const m = Math.min(rows, outF - r0);
    const yb = yBlock.subarray(0, n * m);
    gemm(yb, x, block(r0, m), n, m, inF, false, true, 1, 0);
    for (let i = 0; i < n; i++) {
      y.set(yb.subarray(i * m, i * m + m), i * outF + r0);
    }
  }
}
