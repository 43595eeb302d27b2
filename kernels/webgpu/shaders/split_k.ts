/**
 * The second half of a split-k matrix product (see `splitK` in matmul.ts):
 * c = alpha · Σ_z part[z] + beta · c, the partials added in z order, so the
 * result is the same bits every run.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";

/** Sums `S` partial products of `n` elements each into c. */
export const SPLIT_K_REDUCE: Kernel = {
  name: "split_k_reduce",
  uniforms: [["n", "u32"], ["S", "u32"], ["alpha", "f32"], ["beta", "f32"]],
  buffers: [["part", "read", "array<f32>"], ["c", "read_write", "array<f32>"]],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i >= p.n) { return; }
  var acc = 0.0;
  for (var z = 0u; z < p.S; z++) { acc += part[z * p.n + i]; }
  var v = p.alpha * acc;
  if (p.beta != 0.0) { v += p.beta * c[i]; }
  c[i] = v;
}`,
};
