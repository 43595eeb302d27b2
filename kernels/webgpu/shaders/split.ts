/**
 * Kernels over one block of a tensor split across several buffers (see
 * `../layout.ts`): a block is a row-major [rows, cols] matrix whose element
 * (0, 0) is element (row0, col0) of the whole tensor. Each is dispatched once
 * per block; results match the unsplit kernels element for element, except
 * the log-softmax sums, which add per-block partial sums in block order.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";
import { REDUCE_FNS, ROW_ARGS, ROW_INDEX, RW } from "./reduce.ts";

/**
 * dst[dstOff + r·dstLd + c] = src[srcOff + r·srcLd + c] for r < rows, c < cols,
 * as raw 32-bit words (exact for f32 and i32 alike).
 */
export const COPY_2D: Kernel = {
  name: "copy_2d",
  uniforms: [
    ["rows", "u32"],
    ["cols", "u32"],
    ["srcLd", "u32"],
    ["srcOff", "u32"],
    ["dstLd", "u32"],
    ["dstOff", "u32"],
  ],
  buffers: [
    ["src", "read", "array<u32>"],
    ["dst", "read_write", "array<u32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  let c = i % p.cols;
  dst[p.dstOff + r * p.dstLd + c] = src[p.srcOff + r * p.srcLd + c];
}`,
};

/**
 * One out block of the embedding gather from one table block: out[i, c] =
 * table[id, c] for the rows whose id falls in the table block's rows
 * [tr0, tr1) and columns in [tc0, tc1) (out blocks are cleared first, so ids
 * outside the table give zero).
 */
export const EMBEDDING_BLOCK: Kernel = {
  name: "embedding_block",
  uniforms: [
    ["total", "u32"],
    ["ocols", "u32"],
    ["orow0", "u32"],
    ["ocol0", "u32"],
    ["tr0", "u32"],
    ["tr1", "u32"],
    ["tc0", "u32"],
    ["tc1", "u32"],
  ],
  buffers: [
    ["table", "read", "array<f32>"],
    ["ids", "read", "array<i32>"],
    ["out", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i >= p.total) { return; }
  let c = p.ocol0 + i % p.ocols;
  if (c < p.tc0 || c >= p.tc1) { return; }
  let id = ids[p.orow0 + i / p.ocols];
  if (id >= 0 && u32(id) >= p.tr0 && u32(id) < p.tr1) {
    out[i] = table[(u32(id) - p.tr0) * (p.tc1 - p.tc0) + c - p.tc0];
  }
}`,
};

/**
 * Scatter-add into one block [tr0, tr1) × [tc0, tc1) of dtable (pre-zeroed):
 * one thread per block column walks the ids in order, as the unsplit kernel.
 */
export const EMBEDDING_BACKWARD_BLOCK: Kernel = {
  name: "embedding_backward_block",
  uniforms: [
    ["rows", "u32"],
    ["cols", "u32"],
    ["tr0", "u32"],
    ["tr1", "u32"],
    ["tc0", "u32"],
    ["tc1", "u32"],
  ],
  buffers: [
    ["dy", "read", "array<f32>"],
    ["ids", "read", "array<i32>"],
    ["dtable", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let c = ${FLAT_INDEX};
  let w = p.tc1 - p.tc0;
  if (c >= w) { return; }
  for (var i = 0u; i < p.rows; i++) {
    let id = ids[i];
    if (id >= 0 && u32(id) >= p.tr0 && u32(id) < p.tr1) {
      let o = (u32(id) - p.tr0) * w + c;
      dtable[o] = dtable[o] + dy[i * p.cols + p.tc0 + c];
    }
  }
}`,
};

const LSE_BLOCK_UNIFORMS = [
  ["rows", "u32"],
  ["cols", "u32"],
  ["row0", "u32"],
  ["col0", "u32"],
  ["nb", "u32"],
  ["j", "u32"],
] as const;

/**
 * Log-softmax pass 1, one workgroup per row of a logits block (block column
 * j of nb): pmax[row·nb + j] = the block row's max, and tlogit[row] = the
 * target's logit when the target falls in this block.
 */
export const LSE_BLOCK_MAX: Kernel = {
  name: "lse_block_max",
  uniforms: LSE_BLOCK_UNIFORMS,
  buffers: [
    ["x", "read", "array<f32>"],
    ["targets", "read", "array<i32>"],
    ["pmax", "read_write", "array<f32>"],
    ["tlogit", "read_write", "array<f32>"],
  ],
  body: `${REDUCE_FNS}
@compute @workgroup_size(${RW}) fn main(${ROW_ARGS}) {
  let r = ${ROW_INDEX};
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  var m = -3.4028235e38;
  for (var v = lid; v < p.cols; v += ${RW}u) { m = max(m, x[base + v]); }
  let mx = reduceMax(lid, m);
  if (lid == 0u) {
    let row = p.row0 + r;
    pmax[row * p.nb + p.j] = mx;
    let t = targets[row];
    if (t >= 0 && u32(t) >= p.col0 && u32(t) < p.col0 + p.cols) {
      tlogit[row] = x[base + u32(t) - p.col0];
    }
  }
}`,
};

/** Log-softmax pass 2, one thread per row: mx[row] = max over j of pmax[row·nb + j]. */
export const LSE_ROW_MAX: Kernel = {
  name: "lse_row_max",
  uniforms: [["rows", "u32"], ["nb", "u32"]],
  buffers: [
    ["pmax", "read", "array<f32>"],
    ["mx", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let row = ${FLAT_INDEX};
  if (row >= p.rows) { return; }
  var m = -3.4028235e38;
  for (var j = 0u; j < p.nb; j++) { m = max(m, pmax[row * p.nb + j]); }
  mx[row] = m;
}`,
};

/**
 * Log-softmax pass 3, one workgroup per row of a logits block:
 * psum[row·nb + j] = Σ exp(x − mx[row]) over the block row (tree order).
 */
export const LSE_BLOCK_SUM: Kernel = {
  name: "lse_block_sum",
  uniforms: LSE_BLOCK_UNIFORMS,
  buffers: [
    ["x", "read", "array<f32>"],
    ["mx", "read", "array<f32>"],
    ["psum", "read_write", "array<f32>"],
  ],
  body: `${REDUCE_FNS}
@compute @workgroup_size(${RW}) fn main(${ROW_ARGS}) {
  let r = ${ROW_INDEX};
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  let row = p.row0 + r;
  let m = mx[row];
  var s = 0.0;
  for (var v = lid; v < p.cols; v += ${RW}u) { s += exp(x[base + v] - m); }
  let total = reduceSum(lid, s);
  if (lid == 0u) { psum[row * p.nb + p.j] = total; }
}`,
};

/**
 * Log-softmax pass 4, one thread per row: lse = mx + log Σ_j psum (j in
 * order); logprobs = tlogit − lse (0 for a target outside the vocabulary).
 */
export const LSE_FINAL: Kernel = {
  name: "lse_final",
  uniforms: [["rows", "u32"], ["nb", "u32"], ["vocab", "u32"]],
  buffers: [
    ["psum", "read", "array<f32>"],
    ["mx", "read", "array<f32>"],
    ["tlogit", "read", "array<f32>"],
    ["targets", "read", "array<i32>"],
    ["logprobs", "read_write", "array<f32>"],
    ["lse", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let row = ${FLAT_INDEX};
  if (row >= p.rows) { return; }
  var s = 0.0;
  for (var j = 0u; j < p.nb; j++) { s += psum[row * p.nb + j]; }
  let l = mx[row] + log(s);
  lse[row] = l;
  let t = targets[row];
  if (t >= 0 && u32(t) < p.vocab) {
    logprobs[row] = tlogit[row] - l;
  } else {
    logprobs[row] = 0.0;
  }
}`,
};

/** d logits of one block = dlp · (onehot(target) − exp(logits − lse)), as the unsplit kernel. */
export const LSE_BACKWARD_BLOCK: Kernel = {
  name: "lse_backward_block",
  uniforms: [
    ["total", "u32"],
    ["cols", "u32"],
    ["row0", "u32"],
    ["col0", "u32"],
  ],
  buffers: [
    ["dlp", "read", "array<f32>"],
    ["logits", "read", "array<f32>"],
    ["targets", "read", "array<i32>"],
    ["lse", "read", "array<f32>"],
    ["dlogits", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i >= p.total) { return; }
  let row = p.row0 + i / p.cols;
  let v = p.col0 + i % p.cols;
  let pr = exp(logits[i] - lse[row]);
  let hot = select(0.0, 1.0, targets[row] == i32(v));
  dlogits[i] = dlp[row] * (hot - pr);
}`,
};
