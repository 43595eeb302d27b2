/**
 * Rotary position embedding (rotate-half layout) from host-computed cos/sin
 * tables.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";

/**
 * y1 = x1 cos − x2 sin, y2 = x2 cos + x1 sin for pairs (i, i + D/2); `sign` = −1
 * rotates back (the backward). table holds cos then sin, each [positions, D/2].
 */
export const ROPE: Kernel = {
  name: "rope",
  uniforms: [
    ["total", "u32"],
    ["half", "u32"],
    ["heads", "u32"],
    ["seqLen", "u32"],
    ["offset", "u32"],
    ["tableRows", "u32"],
    ["sign", "f32"],
  ],
  buffers: [
    ["x", "read", "array<f32>"],
    ["table", "read", "array<f32>"],
    ["y", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t >= p.total) { return; }
  let i = t % p.half;
  let rh = t / p.half; // row · heads + head
  let row = rh / p.heads;
  let pos = p.offset + row % p.seqLen;
  let base = rh * 2u * p.half;
  let c = table[pos * p.half + i];
  let s = p.sign * table[(p.tableRows + pos) * p.half + i];
  let x1 = x[base + i];
  let x2 = x[base + i + p.half];
  y[base + i] = x1 * c - x2 * s;
  y[base + i + p.half] = x2 * c + x1 * s;
}`,
};
