/**
 * Log-softmax gathered at targets, for the native backend: the row softmax
 * runs in the f32x4 kernels of simd_kernels.ts (Σ e^(logit − max) in f32),
 * the rest as in the CPU reference (../cpu/log_softmax.ts):
 *
 *   lse = max + log Σ_v e^(logit_v − max),  logprob = logit_t − lse
 *   dlogit_v = dlogprob · (onehot(t)_v − e^(logit_v − lse))
 *
 * Rows go through the kernels' memory a block at a time, V rounded up to 4
 * floats apart (the padding columns are masked).
 *
 * @module
 */

import { roundUp4, type SimdKernels } from "./simd_kernels.ts";

/** Rows per block: a block of logits and one of gradients stay in L2. */
const BLOCK_ROWS = 32;

/** Fills logprobs [N] and lse [N] from logits [N,V]. */
export function logSoftmaxGatherSimd(
  simd: SimdKernels,
  logprobs: Float32Array,
  lse: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  n: number,
  v: number,
): void {
  const ld = roundUp4(v);
  const stats = BLOCK_ROWS * ld;
  const mem = simd.floats(stats + 2 * BLOCK_ROWS);
  for (let r0 = 0; r0 < n; r0 += BLOCK_ROWS) {
    const m = Math.min(BLOCK_ROWS, n - r0);
    for (let i = 0; i < m; i++) {
      const o = (r0 + i) * v;
      mem.set(logits.subarray(o, o + v), i * ld);
    }
    simd.softmaxForward(0, ld, m, v, 0, stats);
    for (let i = 0; i < m; i++) {
      const row = r0 + i;
      const l = mem[stats + 2 * i] + Math.log(mem[stats + 2 * i + 1]);
      lse[row] = l;
      logprobs[row] = logits[row * v + targets[row]] - l;
    }
  }
}

/** Fills dlogits [N,V] (every element) from dlogprobs [N]. */
export function logSoftmaxGatherBackwardSimd(
  simd: SimdKernels,
  dlogits: Float32Array,
  dlogprobs: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  lse: Float32Array,
  n: number,
  v: number,
): void {
  const ld = roundUp4(v);
  const block = BLOCK_ROWS * ld;
  const stats = 2 * block;
  const mem = simd.floats(stats + 2 * BLOCK_ROWS);
  for (let r0 = 0; r0 < n; r0 += BLOCK_ROWS) {
    const m = Math.min(BLOCK_ROWS, n - r0);
    for (let i = 0; i < m; i++) {
      const o = (r0 + i) * v;
      mem.set(logits.subarray(o, o + v), i * ld);
      mem[stats + 2 * i] = lse[r0 + i];
      mem[stats + 2 * i + 1] = dlogprobs[r0 + i];
    }
    // p = e^(logit − lse); ds = p · (0 − dlogprob)
    mem.fill(0, block, block + m * ld);
    simd.softmaxBackward(0, block, ld, m, v, 0, stats);
    for (let i = 0; i < m; i++) {
      const row = r0 + i;
      const o = row * v;
      dlogits.set(mem.subarray(block + i * ld, block + i * ld + v), o);
      const t = targets[row];
      dlogits[o + t] = dlogprobs[row] * (1 - mem[i * ld + t]);
    }
  }
}
