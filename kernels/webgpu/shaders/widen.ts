/**
 * 16-bit frozen weights widened to f32 on the device: two elements a u32
 * word (element 2w in the low half, 2w + 1 in the high half), bf16 shifted
 * into the top of a float32, f16 through WGSL's `unpack2x16float` (core
 * WGSL: no `shader-f16` needed). Exact for both formats.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";

/** out[i] = float(bits[i]) for i < count; format 0 is bf16, 1 is f16. */
export const WIDEN: Kernel = {
  name: "widen_half",
  uniforms: [["count", "u32"], ["format", "u32"]],
  buffers: [
    ["bits", "read", "array<u32>"],
    ["out", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i >= p.count) { return; }
  let word = bits[i / 2u];
  let h = select(word & 0xffffu, word >> 16u, (i & 1u) == 1u);
  if (p.format == 0u) {
    out[i] = bitcast<f32>(h << 16u);
  } else {
    out[i] = unpack2x16float(h).x;
  }
}`,
};
