/**
 * Elementwise, RMSNorm and RoPE kernels fed by textures, for CPU adapters:
 * the twins of `elementwise.ts` (add, SwiGLU and its backward), `norm.ts`
 * and `rope.ts` reading their inputs from rgba32float storage textures. On lavapipe every
 * storage-buffer load is a per-lane scalar loop (see `matmul.ts`); a texel
 * fetch brings four floats inline, and each thread writes its results as
 * vec4s (one per-lane loop per four floats instead of one per float).
 *
 * A tensor of n floats (n a multiple of 4) lies in its texture flat:
 * {@linkcode FLAT_TEX_WIDTH} texels a row, float 4t..4t+3 in texel
 * (t mod W, t div W), so one buffer-to-texture copy (plus one for a last
 * partial row) lays out any tensor. Outputs are bound as vec4 arrays.
 * RMSNorm runs a thread per row with the row's sum in column order (the
 * storage kernel reduces a row in a tree), its dw a thread per four columns
 * in row order, as the storage kernel does: reruns are bit-identical.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";

/** Texels per row of a flat texture: 256 floats, a 1 KiB copy pitch. */
export const FLAT_TEX_WIDTH = 64;

/** WGSL: the texel of flat index t. */
const AT = `fn at(t: u32) -> vec2<i32> {
  return vec2<i32>(i32(t % ${FLAT_TEX_WIDTH}u), i32(t / ${FLAT_TEX_WIDTH}u));
}`;

/** `out = a + b`, n/4 threads (uniform n4 = n/4). */
export const ADD_TEX: Kernel = {
  name: "add_tex",
  uniforms: [["n4", "u32"]],
  buffers: [["out", "read_write", "array<vec4<f32>>"]],
  storageTextures: [["ta", "2d"], ["tb", "2d"]],
  body: `${AT}
@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t < p.n4) { out[t] = textureLoad(ta, at(t)) + textureLoad(tb, at(t)); }
}`,
};

/** `h = silu(gate) · up`, n/4 threads. */
export const SWIGLU_TEX: Kernel = {
  name: "swiglu_tex",
  uniforms: [["n4", "u32"]],
  buffers: [["h", "read_write", "array<vec4<f32>>"]],
  storageTextures: [["tgate", "2d"], ["tup", "2d"]],
  body: `${AT}
@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t < p.n4) {
    let g = textureLoad(tgate, at(t));
    let s = 1.0 / (1.0 + exp(-g));
    h[t] = g * s * textureLoad(tup, at(t));
  }
}`,
};

/** dgate = dh · up · σ(g)(1 + g(1 − σ(g))); dup = dh · silu(g); n/4 threads. */
export const SWIGLU_BACKWARD_TEX: Kernel = {
  name: "swiglu_backward_tex",
  uniforms: [["n4", "u32"]],
  buffers: [
    ["dgate", "read_write", "array<vec4<f32>>"],
    ["dup", "read_write", "array<vec4<f32>>"],
  ],
  storageTextures: [["tdh", "2d"], ["tgate", "2d"], ["tup", "2d"]],
  body: `${AT}
@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t < p.n4) {
    let g = textureLoad(tgate, at(t));
    let s = 1.0 / (1.0 + exp(-g));
    let d = textureLoad(tdh, at(t));
    dgate[t] = d * textureLoad(tup, at(t)) * s * (1.0 + g * (1.0 - s));
    dup[t] = d * g * s;
  }
}`,
};

/** y = x · rstd · w, rstd = 1 / sqrt(mean(x²) + eps); a thread per row. */
export const RMSNORM_TEX: Kernel = {
  name: "rmsnorm_tex",
  uniforms: [["rows", "u32"], ["cols", "u32"], ["eps", "f32"]],
  buffers: [
    ["y", "read_write", "array<vec4<f32>>"],
    ["rstd", "read_write", "array<f32>"],
  ],
  storageTextures: [["tx", "2d"], ["tw", "2d"]],
  body: `${AT}
@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let row = ${FLAT_INDEX};
  if (row >= p.rows) { return; }
  let c4 = p.cols / 4u;
  let base = row * c4;
  var s = 0.0;
  for (var q = 0u; q < c4; q++) {
    let v = textureLoad(tx, at(base + q));
    s += dot(v, v);
  }
  let r = 1.0 / sqrt(s / f32(p.cols) + p.eps);
  for (var q = 0u; q < c4; q++) {
    y[base + q] = textureLoad(tx, at(base + q)) * r * textureLoad(tw, at(q));
  }
  rstd[row] = r;
}`,
};

/** dx = rstd · dy·w − x · rstd³ / C · Σ(dy·w·x); a thread per row. */
export const RMSNORM_BACKWARD_DX_TEX: Kernel = {
  name: "rmsnorm_backward_dx_tex",
  uniforms: [["rows", "u32"], ["cols", "u32"]],
  buffers: [
    ["rstd", "read", "array<f32>"],
    ["dx", "read_write", "array<vec4<f32>>"],
  ],
  storageTextures: [["tdy", "2d"], ["tx", "2d"], ["tw", "2d"]],
  body: `${AT}
@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let row = ${FLAT_INDEX};
  if (row >= p.rows) { return; }
  let c4 = p.cols / 4u;
  let base = row * c4;
  var s = 0.0;
  for (var q = 0u; q < c4; q++) {
    let w = textureLoad(tw, at(q));
    s += dot(textureLoad(tdy, at(base + q)) * w, textureLoad(tx, at(base + q)));
  }
  let r = rstd[row];
  let k = r * r * r * s / f32(p.cols);
  for (var q = 0u; q < c4; q++) {
    let w = textureLoad(tw, at(q));
    dx[base + q] = r * textureLoad(tdy, at(base + q)) * w -
      textureLoad(tx, at(base + q)) * k;
  }
}`,
};

/**
 * dw[c] = Σ_rows dy · x · rstd in row order; a thread per four columns, rows
 * a multiple of 4 (rstd read four rows a texel).
 */
export const RMSNORM_BACKWARD_DW_TEX: Kernel = {
  name: "rmsnorm_backward_dw_tex",
  uniforms: [["rows", "u32"], ["cols", "u32"]],
  buffers: [["dw", "read_write", "array<vec4<f32>>"]],
  storageTextures: [["tdy", "2d"], ["tx", "2d"], ["trs", "2d"]],
  body: `${AT}
@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let q = ${FLAT_INDEX};
  let c4 = p.cols / 4u;
  if (q >= c4) { return; }
  var s = vec4<f32>(0.0);
  for (var r4 = 0u; r4 < p.rows / 4u; r4++) {
    let rs = textureLoad(trs, at(r4));
    let t = 4u * r4 * c4 + q;
    s += textureLoad(tdy, at(t)) * textureLoad(tx, at(t)) * rs.x;
    s += textureLoad(tdy, at(t + c4)) * textureLoad(tx, at(t + c4)) * rs.y;
    s += textureLoad(tdy, at(t + 2u * c4)) * textureLoad(tx, at(t + 2u * c4)) * rs.z;
    s += textureLoad(tdy, at(t + 3u * c4)) * textureLoad(tx, at(t + 3u * c4)) * rs.w;
  }
  dw[q] = s;
}`,
};

/**
 * Rotary embedding (rotate-half layout, the twin of `ROPE` in `rope.ts`)
 * four pairs a thread: y1 = x1 cos − x2 sin, y2 = x2 cos + x1 sin for pairs
 * (i, i + D/2), i in steps of 4 (D/2 a multiple of 4); `sign` = −1 rotates
 * back. x and the cos/sin table (cos then sin, each [tableRows, D/2]) are
 * flat textures; total4 = rows · heads · D/8 threads.
 */
export const ROPE_TEX: Kernel = {
  name: "rope_tex",
  uniforms: [
    ["total4", "u32"],
    ["half4", "u32"],
    ["heads", "u32"],
    ["seqLen", "u32"],
    ["offset", "u32"],
    ["tableRows", "u32"],
    ["sign", "f32"],
  ],
  buffers: [["y", "read_write", "array<vec4<f32>>"]],
  storageTextures: [["tx", "2d"], ["table", "2d"]],
  body: `${AT}
@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t >= p.total4) { return; }
  let i4 = t % p.half4;
  let rh = t / p.half4; // row · heads + head
  let pos = p.offset + (rh / p.heads) % p.seqLen;
  let b1 = rh * 2u * p.half4 + i4;
  let b2 = b1 + p.half4;
  let c = textureLoad(table, at(pos * p.half4 + i4));
  let s = p.sign * textureLoad(table, at((p.tableRows + pos) * p.half4 + i4));
  let x1 = textureLoad(tx, at(b1));
  let x2 = textureLoad(tx, at(b2));
  y[b1] = x1 * c - x2 * s;
  y[b2] = x2 * c + x1 * s;
}`,
};
