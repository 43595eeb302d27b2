/**
 * Embedding gather and its backward. The backward is a scatter-add without
 * float atomics: one thread per column walks the ids in order, so each output
 * element is summed in the same order on every run.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";

/** out[i, c] = table[ids[i], c] (zero for an id outside the table). */
export const EMBEDDING: Kernel = {
  name: "embedding",
  uniforms: [["total", "u32"], ["cols", "u32"], ["vocab", "u32"]],
  buffers: [
    ["table", "read", "array<f32>"],
    ["ids", "read", "array<i32>"],
    ["out", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i >= p.total) { return; }
  let id = ids[i / p.cols];
  if (id >= 0 && u32(id) < p.vocab) {
    out[i] = table[u32(id) * p.cols + i % p.cols];
  } else {
    out[i] = 0.0;
  }
}`,
};

/** dtable[ids[i], c] += dy[i, c] for i in order (dtable pre-zeroed). */
export const EMBEDDING_BACKWARD: Kernel = {
  name: "embedding_backward",
  uniforms: [["rows", "u32"], ["cols", "u32"], ["vocab", "u32"]],
  buffers: [
    ["dy", "read", "array<f32>"],
    ["ids", "read", "array<i32>"],
    ["dtable", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let c = ${FLAT_INDEX};
  if (c >= p.cols) { return; }
  for (var i = 0u; i < p.rows; i++) {
    let id = ids[i];
    if (id >= 0 && u32(id) < p.vocab) {
      let o = u32(id) * p.cols + c;
      dtable[o] = dtable[o] + dy[i * p.cols + c];
    }
  }
}`,
};
