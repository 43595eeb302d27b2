/**
 * RMSNorm forward and backward kernels. One workgroup per row reduces the row
 * in a fixed tree order; dw sums over rows, one thread per column, in row order.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";
import { REDUCE_FNS, ROW_ARGS, ROW_INDEX, RW } from "./reduce.ts";

/** y = x · rstd · w, rstd = 1 / sqrt(mean(x²) + eps). */
export const RMSNORM: Kernel = {
  name: "rmsnorm",
  uniforms: [["rows", "u32"], ["cols", "u32"], ["eps", "f32"]],
  buffers: [
    ["x", "read", "array<f32>"],
    ["w", "read", "array<f32>"],
    ["y", "read_write", "array<f32>"],
    ["rstd", "read_write", "array<f32>"],
  ],
  body: `${REDUCE_FNS}
@compute @workgroup_size(${RW}) fn main(${ROW_ARGS}) {
  let row = ${ROW_INDEX};
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var s = 0.0;
  for (var c = lid; c < p.cols; c += ${RW}u) { let v = x[base + c]; s += v * v; }
  let ss = reduceSum(lid, s);
  let r = 1.0 / sqrt(ss / f32(p.cols) + p.eps);
  for (var c = lid; c < p.cols; c += ${RW}u) { y[base + c] = x[base + c] * r * w[c]; }
  if (lid == 0u) { rstd[row] = r; }
}`,
};

/** dx = rstd · dy·w − x · rstd³ / C · Σ(dy·w·x), per row. */
export const RMSNORM_BACKWARD_DX: Kernel = {
  name: "rmsnorm_backward_dx",
  uniforms: [["rows", "u32"], ["cols", "u32"]],
  buffers: [
    ["dy", "read", "array<f32>"],
    ["x", "read", "array<f32>"],
    ["w", "read", "array<f32>"],
    ["rstd", "read", "array<f32>"],
    ["dx", "read_write", "array<f32>"],
  ],
  body: `${REDUCE_FNS}
@compute @workgroup_size(${RW}) fn main(${ROW_ARGS}) {
  let row = ${ROW_INDEX};
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var s = 0.0;
  for (var c = lid; c < p.cols; c += ${RW}u) { s += dy[base + c] * w[c] * x[base + c]; }
  let dot = reduceSum(lid, s);
  let r = rstd[row];
  let k = r * r * r * dot / f32(p.cols);
  for (var c = lid; c < p.cols; c += ${RW}u) {
    dx[base + c] = r * dy[base + c] * w[c] - x[base + c] * k;
  }
}`,
};

/** dw[c] = Σ_rows dy · x · rstd, in row order. */
export const RMSNORM_BACKWARD_DW: Kernel = {
  name: "rmsnorm_backward_dw",
  uniforms: [["rows", "u32"], ["cols", "u32"]],
  buffers: [
    ["dy", "read", "array<f32>"],
    ["x", "read", "array<f32>"],
    ["rstd", "read", "array<f32>"],
    ["dw", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let c = ${FLAT_INDEX};
  if (c >= p.cols) { return; }
  var s = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    let i = r * p.cols + c;
    s += dy[i] * x[i] * rstd[r];
  }
  dw[c] = s;
}`,
};
