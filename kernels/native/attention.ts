/**
 * Causal GQA attention with the heavy products done by a BLAS sgemm, for the
 * native backend. Same layouts and maths as the CPU reference
 * (../cpu/attention.ts): q, out [B·Tq, H·D]; k, v [B·S, G·D] with S = kvRows;
 * lse [B·H·Tq] at ((b·H + h)·Tq + i); query head h reads kv head
 * g = floor(h / (H/G)); query i sits at position Tk − Tq + i and sees keys
 * 0 … that.
 *
 * Per (sequence b, query head h), with Q_h [Tq,D], K_g, V_g [Tk,D] read in
 * place as strided sub-matrices (leading dimensions H·D and G·D), and split
 * into tiles of query rows (see {@linkcode QUERY_BLOCK}):
 *   S = scale · Q_h K_gᵀ          [Tq,Tk], scale = 1/sqrt(D), masked causally
 *   P = softmax_rows(S),  lse = log Σ_j exp(S_ij)
 *   O_h = P V_g
 * and backward, with P rebuilt from S and lse:
 *   dV_g += Pᵀ dO_h
 *   dP = dO_h V_gᵀ,  dS = P ⊙ (dP − rowsum(dO_h ⊙ O_h))
 *   dK_g += scale · dSᵀ Q_h,  dQ_h = scale · dS K_g
 * Masked entries of P (and so of dS) are exactly 0, so the products add
 * nothing for them. dK and dV sum over tiles in a fixed order (b, h, row
 * block), in f32, so reruns give the same bits. The softmax runs in the f32x4
 * kernels of simd_kernels.ts (its row max and Σ exp in f32, four lanes then
 * lanes 0…3); Σ_c dO·O runs in float64 over c = 0, 1, …
 *
 * @module
 */

import type { AttnDims } from "../cpu/attention.ts";
import type { StridedGemmFn } from "./openblas.ts";
import { roundUp4, type SimdKernels } from "./simd_kernels.ts";

/**
 * Query rows per tile. Row block r of a head only sees keys up to the block's
 * last row, so the products of a tile stop there: with Tq = Tk = 128 this does
 * 75% of the full square's work, in products large enough for sgemm (32-row
 * tiles do 62% of it but took ~10% longer: twice the calls, smaller products).
 */
export const QUERY_BLOCK = 64;

/**
 * A tile of query rows sharing one kv head: m rows of q (and out, dout, dq)
 * starting at qOff, ld apart, with lse at lseOff + i. Row i sees keys
 * 0 … first + step·i − 1 (step 1: causal rows of one head; step 0: the heads of
 * a group at one decode position, which all see the same keys).
 */
interface Tile {
  m: number;
  qOff: number;
  ld: number;
  lseOff: number;
  kOff: number;
  first: number;
  step: number;
}

/**
 * Calls `fn` for every tile, in a fixed order: sequences b, then query heads
 * h (row blocks of QUERY_BLOCK within a head), or with Tq = 1 the G groups of
 * H/G heads each (one product per group instead of per head).
 */
function forEachTile(dims: AttnDims, fn: (t: Tile) => void): void {
  const { batch, tq, tk, kvRows, heads, kvHeads, headDim: d } = dims;
  const group = heads / kvHeads;
  const qw = heads * d;
  const kw = kvHeads * d;
  for (let b = 0; b < batch; b++) {
    if (tq === 1) {
      for (let g = 0; g < kvHeads; g++) {
        fn({
          m: group,
          qOff: b * qw + g * group * d,
          ld: d,
          lseOff: b * heads + g * group,
          kOff: b * kvRows * kw + g * d,
          first: tk,
          step: 0,
        });
      }
      continue;
    }
    for (let h = 0; h < heads; h++) {
      const kOff = b * kvRows * kw + Math.floor(h / group) * d;
      for (let i0 = 0; i0 < tq; i0 += QUERY_BLOCK) {
        fn({
          m: Math.min(QUERY_BLOCK, tq - i0),
          qOff: (b * tq + i0) * qw + h * d,
          ld: qw,
          lseOff: (b * heads + h) * tq + i0,
          kOff,
          first: tk - tq + i0 + 1,
          step: 1,
        });
      }
    }
  }
}

/** Rows of the largest tile of {@linkcode forEachTile}. */
function maxTileRows(dims: AttnDims): number {
  return dims.tq === 1
    ? dims.heads / dims.kvHeads
    : Math.min(QUERY_BLOCK, dims.tq);
}

/**
 * Where a tile's scratch lives in the SIMD kernels' memory (floats): scores
 * and probabilities P at 0, dP and dS at `ds`, per-row statistics (two floats
 * a row) at `stats`. Rows are `ld` = Tk rounded up to 4 floats apart, so that
 * the kernels work on whole f32x4 vectors.
 */
function tileScratch(
  simd: SimdKernels,
  dims: AttnDims,
): { ds: number; stats: number } {
  const size = maxTileRows(dims) * roundUp4(dims.tk);
  simd.floats(2 * size + 2 * maxTileRows(dims));
  return { ds: size, stats: 2 * size };
}

/** Fills out [B·Tq, H·D] and lse [B·H·Tq] (see the module doc). */
export function attentionForwardBlas(
  gemm: StridedGemmFn,
  simd: SimdKernels,
  out: Float32Array,
  lse: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dims: AttnDims,
): void {
  const d = dims.headDim;
  const scale = 1 / Math.sqrt(d);
  const kw = dims.kvHeads * d; // row width of k and v
  const { stats } = tileScratch(simd, dims);
  const mem = simd.floats(0);
  forEachTile(dims, ({ m, qOff, ld, lseOff, kOff, first, step }) => {
    const kn = first + step * (m - 1); // keys seen by the tile's last row
    const lp = roundUp4(kn);
    // S = scale · Q Kᵀ  [m, kn], rows lp apart
    gemm(false, true, m, kn, d, scale, q, qOff, ld, k, kOff, kw, 0, mem, 0, lp);
    // P = softmax over the visible keys; lse = max + log Σ e^(s − max)
    simd.softmaxForward(0, lp, m, first, step, stats);
    for (let i = 0; i < m; i++) {
      lse[lseOff + i] = mem[stats + 2 * i] +
        Math.log(mem[stats + 2 * i + 1]);
    }
    // O = P V  [m, D]
    gemm(false, false, m, d, kn, 1, mem, 0, lp, v, kOff, kw, 0, out, qOff, ld);
  });
}

/**
 * Fills dq (shaped as q) and accumulates into dk, dv (shaped as k, v), which
 * must be zero on entry; their rows ≥ Tk of each sequence are not touched.
 */
export function attentionBackwardBlas(
  gemm: StridedGemmFn,
  simd: SimdKernels,
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  dout: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  out: Float32Array,
  lse: Float32Array,
  dims: AttnDims,
): void {
  const d = dims.headDim;
  const scale = 1 / Math.sqrt(d);
  const kw = dims.kvHeads * d;
  const { ds, stats } = tileScratch(simd, dims);
  const mem = simd.floats(0);
  forEachTile(dims, ({ m, qOff, ld, lseOff, kOff, first, step }) => {
    const kn = first + step * (m - 1);
    const lp = roundUp4(kn);
    // S = scale · Q Kᵀ, and dP = dO Vᵀ
    gemm(false, true, m, kn, d, scale, q, qOff, ld, k, kOff, kw, 0, mem, 0, lp);
    gemm(false, true, m, kn, d, 1, dout, qOff, ld, v, kOff, kw, 0, mem, ds, lp);
    for (let i = 0; i < m; i++) {
      const o = qOff + i * ld;
      let rowDot = 0; // Σ_c dO·O
      for (let c = 0; c < d; c++) rowDot += dout[o + c] * out[o + c];
      mem[stats + 2 * i] = lse[lseOff + i];
      mem[stats + 2 * i + 1] = rowDot;
    }
    // P = e^(S − lse) (0 where masked), dS = P ⊙ (dP − rowdot)
    simd.softmaxBackward(0, ds, lp, m, first, step, stats);
    // dV += Pᵀ dO
    gemm(true, false, kn, d, m, 1, mem, 0, lp, dout, qOff, ld, 1, dv, kOff, kw);
    // dK += scale · dSᵀ Q;  dQ = scale · dS K
    gemm(
      true,
      false,
      kn,
      d,
      m,
      scale,
      mem,
      ds,
      lp,
      q,
      qOff,
      ld,
      1,
      dk,
      kOff,
      kw,
    );
    gemm(
      false,
      false,
      m,
      d,
      kn,
      scale,
      mem,
      ds,
      lp,
      k,
      kOff,
      kw,
      0,
      dq,
      qOff,
      ld,
    );
  });
}
