/**
 * General matrix product on row-major f32 arrays:
 * `out = alpha · op(a) · op(b) + beta · out`.
 *
 * Shapes: op(a) is [M,K], op(b) is [K,N], out is [M,N].
 * Stored: a is [M,K], or [K,M] when `transA`; b is [K,N], or [N,K] when `transB`.
 *
 * Each output element is summed in float64, in a fixed order (p = 0, 1, … K−1,
 * four terms at a time), then rounded once to f32: the same inputs always give
 * the same bits.
 *
 * Loop order is i-k-j over column panels of {@linkcode PANEL} outputs: the inner
 * loop runs along contiguous rows of b and of a float64 accumulator that stays
 * in L1. `transB` is handled by dot products along contiguous rows of a and b.
 *
 * @module
 */

/** A matrix-product implementation with the signature of {@linkcode gemmForward}. */
export type GemmFn = (
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  alpha: number,
  beta: number,
) => void;

/** Columns of out computed per pass over a row of a (accumulator width). */
export const PANEL = 256;

/**
 * `out = alpha · op(a) · op(b) + beta · out` (see the module doc for shapes).
 * With `beta = 0`, out is only written, never read (NaNs in it do not leak).
 *
 * @example 2×2 product
 * ```ts
 * import { gemmForward } from "./gemm.ts";
 * const a = new Float32Array([1, 2, 3, 4]);
 * const out = new Float32Array(4);
 * gemmForward(out, a, a, 2, 2, 2, false, false, 1, 0);
 * console.log(out); // [7, 10, 15, 22]
 * ```
 */
export function gemmForward(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  alpha: number,
  beta: number,
): void {
  if (transB) gemmDotRows(out, a, b, m, n, k, transA, alpha, beta);
  else gemmPanels(out, a, b, m, n, k, transA, alpha, beta);
}

/** i-k-j over column panels; b is [K,N]; a is [M,K], or [K,M] when transA. */
function gemmPanels(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  alpha: number,
  beta: number,
): void {
  const acc = new Float64Array(Math.min(PANEL, n));
  // a(i,p) lives at a[i*sAi + p*sAp]
  const sAi = transA ? 1 : k;
  const sAp = transA ? m : 1;
  const k4 = k - (k % 4);
  for (let j0 = 0; j0 < n; j0 += PANEL) {
    const w = Math.min(PANEL, n - j0);
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      const ai = i * sAi;
      let p = 0;
      for (; p < k4; p += 4) {
        const a0 = a[ai + p * sAp];
        const a1 = a[ai + (p + 1) * sAp];
        const a2 = a[ai + (p + 2) * sAp];
        const a3 = a[ai + (p + 3) * sAp];
        const b0 = p * n + j0;
        const b1 = b0 + n;
        const b2 = b1 + n;
        const b3 = b2 + n;
        for (let j = 0; j < w; j++) {
          acc[j] += a0 * b[b0 + j] + a1 * b[b1 + j] + a2 * b[b2 + j] +
            a3 * b[b3 + j];
        }
      }
      for (; p < k; p++) {
        const a0 = a[ai + p * sAp];
        const b0 = p * n + j0;
        for (let j = 0; j < w; j++) acc[j] += a0 * b[b0 + j];
      }
      storeRow(out, i * n + j0, acc, w, alpha, beta);
    }
  }
}

/** out(i,j) = Σ_p a(i,p) · b[j*K + p]: dot products along rows of b ([N,K]). */
function gemmDotRows(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  alpha: number,
  beta: number,
): void {
  // With transA, gather row i of op(a) into a contiguous buffer first (f32,
  // so the hot loop below always reads the same array type).
  const row = transA ? new Float32Array(k) : null;
  const acc = new Float64Array(4);
  const k4 = k - (k % 4);
  const n4 = n - (n % 4);
  for (let i = 0; i < m; i++) {
    let ar = a;
    let ai = i * k;
    if (row !== null) {
      for (let p = 0; p < k; p++) row[p] = a[p * m + i];
      ar = row;
      ai = 0;
    }
    const o = i * n;
    let j = 0;
    // four output columns at once: each a(i,p) is loaded once for four rows of b
    for (; j < n4; j += 4) {
      const r0 = j * k;
      const r1 = r0 + k;
      const r2 = r1 + k;
      const r3 = r2 + k;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let p = 0;
      for (; p < k4; p += 4) {
        const x0 = ar[ai + p], x1 = ar[ai + p + 1];
        const x2 = ar[ai + p + 2], x3 = ar[ai + p + 3];
        s0 += x0 * b[r0 + p] + x1 * b[r0 + p + 1] + x2 * b[r0 + p + 2] +
          x3 * b[r0 + p + 3];
        s1 += x0 * b[r1 + p] + x1 * b[r1 + p + 1] + x2 * b[r1 + p + 2] +
          x3 * b[r1 + p + 3];
        s2 += x0 * b[r2 + p] + x1 * b[r2 + p + 1] + x2 * b[r2 + p + 2] +
          x3 * b[r2 + p + 3];
        s3 += x0 * b[r3 + p] + x1 * b[r3 + p + 1] + x2 * b[r3 + p + 2] +
          x3 * b[r3 + p + 3];
      }
      for (; p < k; p++) {
        const x = ar[ai + p];
        s0 += x * b[r0 + p];
        s1 += x * b[r1 + p];
        s2 += x * b[r2 + p];
        s3 += x * b[r3 + p];
      }
      acc[0] = s0;
      acc[1] = s1;
      acc[2] = s2;
      acc[3] = s3;
      storeRow(out, o + j, acc, 4, alpha, beta);
    }
    for (; j < n; j++) {
      const r0 = j * k;
      let s0 = 0;
      let p = 0;
      for (; p < k4; p += 4) {
        s0 += ar[ai + p] * b[r0 + p] + ar[ai + p + 1] * b[r0 + p + 1] +
          ar[ai + p + 2] * b[r0 + p + 2] + ar[ai + p + 3] * b[r0 + p + 3];
      }
      for (; p < k; p++) s0 += ar[ai + p] * b[r0 + p];
      acc[0] = s0;
      storeRow(out, o + j, acc, 1, alpha, beta);
    }
  }
}

/** out[o + j] = alpha · acc[j] + beta · out[o + j] for j < w (beta 0: out not read). */
function storeRow(
  out: Float32Array,
  o: number,
  acc: Float64Array,
  w: number,
  alpha: number,
  beta: number,
): void {
  if (beta === 0) {
    for (let j = 0; j < w; j++) out[o + j] = alpha * acc[j];
  } else {
    for (let j = 0; j < w; j++) out[o + j] = alpha * acc[j] + beta * out[o + j];
  }
}
