/**
 * Log-softmax gathered at targets, and its backward. One workgroup per row for
 * the max and the sum of exponentials (fixed tree order).
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";
import { REDUCE_FNS, ROW_ARGS, ROW_INDEX, RW } from "./reduce.ts";

/** lse[n] = log Σ exp(logits[n]); logprobs[n] = logits[n, target] − lse[n]. */
export const LOG_SOFTMAX_GATHER: Kernel = {
  name: "log_softmax_gather",
  uniforms: [["rows", "u32"], ["vocab", "u32"]],
  buffers: [
    ["logits", "read", "array<f32>"],
    ["targets", "read", "array<i32>"],
    ["logprobs", "read_write", "array<f32>"],
    ["lse", "read_write", "array<f32>"],
  ],
  body: `${REDUCE_FNS}
@compute @workgroup_size(${RW}) fn main(${ROW_ARGS}) {
  let row = ${ROW_INDEX};
  if (row >= p.rows) { return; }
  let base = row * p.vocab;
  var m = -3.4028235e38;
  for (var v = lid; v < p.vocab; v += ${RW}u) { m = max(m, logits[base + v]); }
  let mx = reduceMax(lid, m);
  var s = 0.0;
  for (var v = lid; v < p.vocab; v += ${RW}u) { s += exp(logits[base + v] - mx); }
  let l = mx + log(reduceSum(lid, s));
  if (lid == 0u) {
    lse[row] = l;
    let t = targets[row];
    if (t >= 0 && u32(t) < p.vocab) {
      logprobs[row] = logits[base + u32(t)] - l;
    } else {
      logprobs[row] = 0.0;
    }
  }
}`,
};

/** d logits = dlp · (onehot(target) − exp(logits − lse)). */
export const LOG_SOFTMAX_GATHER_BACKWARD: Kernel = {
  name: "log_softmax_gather_backward",
  uniforms: [["total", "u32"], ["vocab", "u32"]],
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
  let row = i / p.vocab;
  let v = i % p.vocab;
  let pr = exp(logits[i] - lse[row]);
  let hot = select(0.0, 1.0, targets[row] == i32(v));
  dlogits[i] = dlp[row] * (hot - pr);
}`,
};
