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
 * block), in f32, so reruns give the same bits. Row reductions (max,
 * Σ exp, rowsum) run in float64 over j = 0, 1, …
 *
 * @module
 */

import { fastExp } from "./fast_exp.ts";
import type { AttnDims } from "../cpu/attention.ts";
import type { StridedGemmFn } from "./openblas.ts";

/**
 * Query rows per tile. Row block r of a head only sees keys up to the block's
 * last row, so the products of a tile stop there: with Tq = Tk = 128 this does
 * 62% of the full square's work, in products still large enough for sgemm.
 */
export const QUERY_BLOCK = 32;

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

/** Fills out [B·Tq, H·D] and lse [B·H·Tq] (see the module doc). */
export function attentionForwardBlas(
  gemm: StridedGemmFn,
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
  const p = new Float32Array(maxTileRows(dims) * dims.tk); // S, then P
  forEachTile(dims, ({ m, qOff, ld, lseOff, kOff, first, step }) => {
    const kn = first + step * (m - 1); // keys seen by the tile's last row
    // S = scale · Q Kᵀ  [m, kn]
    gemm(false, true, m, kn, d, scale, q, qOff, ld, k, kOff, kw, 0, p, 0, kn);
    for (let i = 0; i < m; i++) {
      // p_j = exp(s_j − max) / Σ, lse = max + log Σ, over the visible keys
      const r = i * kn;
      const vis = r + first + step * i;
      let max = -Infinity;
      for (let j = r; j < vis; j++) if (p[j] > max) max = p[j];
      let sum = 0;
      for (let j = r; j < vis; j++) {
        const e = fastExp(p[j] - max);
        p[j] = e;
        sum += e;
      }
      lse[lseOff + i] = max + Math.log(sum);
      const inv = 1 / sum;
      for (let j = r; j < vis; j++) p[j] *= inv;
      for (let j = vis; j < r + kn; j++) p[j] = 0;
    }
    // O = P V  [m, D]
    gemm(false, false, m, d, kn, 1, p, 0, kn, v, kOff, kw, 0, out, qOff, ld);
  });
}

/**
 * Fills dq (shaped as q) and accumulates into dk, dv (shaped as k, v), which
 * must be zero on entry; their rows ≥ Tk of each sequence are not touched.
 */
export function attentionBackwardBlas(
  gemm: StridedGemmFn,
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
  const size = maxTileRows(dims) * dims.tk;
  const p = new Float32Array(size); // S, then P
  const ds = new Float32Array(size); // dP, then dS
  forEachTile(dims, ({ m, qOff, ld, lseOff, kOff, first, step }) => {
    const kn = first + step * (m - 1);
    // P = exp(scale · Q Kᵀ − lse), 0 where masked
    gemm(false, true, m, kn, d, scale, q, qOff, ld, k, kOff, kw, 0, p, 0, kn);
    for (let i = 0; i < m; i++) {
      const l = lse[lseOff + i];
      const r = i * kn;
      const vis = r + first + step * i;
      for (let j = r; j < vis; j++) p[j] = fastExp(p[j] - l);
      for (let j = vis; j < r + kn; j++) p[j] = 0;
    }
    // dV += Pᵀ dO
    gemm(true, false, kn, d, m, 1, p, 0, kn, dout, qOff, ld, 1, dv, kOff, kw);
    // dP = dO Vᵀ, then dS = P ⊙ (dP − Σ_c dO·O) in place
    gemm(false, true, m, kn, d, 1, dout, qOff, ld, v, kOff, kw, 0, ds, 0, kn);
    for (let i = 0; i < m; i++) {
      const o = qOff + i * ld;
      let rowDot = 0;
      for (let c = 0; c < d; c++) rowDot += dout[o + c] * out[o + c];
      const r = i * kn;
      for (let j = r; j < r + kn; j++) ds[j] = p[j] * (ds[j] - rowDot);
    }
    // dK += scale · dSᵀ Q;  dQ = scale · dS K
    gemm(true, false, kn, d, m, scale, ds, 0, kn, q, qOff, ld, 1, dk, kOff, kw);
    gemm(
      false,
      false,
      m,
      d,
      kn,
      scale,
      ds,
      0,
      kn,
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
