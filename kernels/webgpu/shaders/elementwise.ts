/**
 * Elementwise kernels: axpy, add, SwiGLU and its backward, the KV-cache row
 * copy.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";

/** `out += alpha · x`. */
export const AXPY: Kernel = {
  name: "axpy",
  uniforms: [["n", "u32"], ["alpha", "f32"]],
  buffers: [["out", "read_write", "array<f32>"], ["x", "read", "array<f32>"]],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i < p.n) { out[i] = out[i] + p.alpha * x[i]; }
}`,
};

/** `out = a + b`. */
export const ADD: Kernel = {
  name: "add",
  uniforms: [["n", "u32"]],
  buffers: [["a", "read", "array<f32>"], ["b", "read", "array<f32>"], [
    "out",
    "read_write",
    "array<f32>",
  ]],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i < p.n) { out[i] = a[i] + b[i]; }
}`,
};

/** `out = a ⊙ b`. */
export const MUL: Kernel = {
  name: "mul",
  uniforms: [["n", "u32"]],
  buffers: [["a", "read", "array<f32>"], ["b", "read", "array<f32>"], [
    "out",
    "read_write",
    "array<f32>",
  ]],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i < p.n) { out[i] = a[i] * b[i]; }
}`,
};

/** `h = silu(gate) · up`, silu(g) = g · σ(g). */
export const SWIGLU: Kernel = {
  name: "swiglu",
  uniforms: [["n", "u32"]],
  buffers: [["gate", "read", "array<f32>"], ["up", "read", "array<f32>"], [
    "h",
    "read_write",
    "array<f32>",
  ]],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i < p.n) {
    let g = gate[i];
    let s = 1.0 / (1.0 + exp(-g));
    h[i] = g * s * up[i];
  }
}`,
};

/** dgate = dh · up · σ(g)(1 + g(1 − σ(g))); dup = dh · silu(g). */
export const SWIGLU_BACKWARD: Kernel = {
  name: "swiglu_backward",
  uniforms: [["n", "u32"]],
  buffers: [
    ["dh", "read", "array<f32>"],
    ["gate", "read", "array<f32>"],
    ["up", "read", "array<f32>"],
    ["dgate", "read_write", "array<f32>"],
    ["dup", "read_write", "array<f32>"],
  ],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i < p.n) {
    let g = gate[i];
    let s = 1.0 / (1.0 + exp(-g));
    let d = dh[i];
    dgate[i] = d * up[i] * s * (1.0 + g * (1.0 - s));
    dup[i] = d * g * s;
  }
}`,
};

/** cache[b·rows + start + r, c] = src[b·n + r, c] for every sequence b. */
export const WRITE_ROWS: Kernel = {
  name: "write_rows",
  uniforms: [["total", "u32"], ["n", "u32"], ["cols", "u32"], ["rows", "u32"], [
    "start",
    "u32",
  ]],
  buffers: [["cache", "read_write", "array<f32>"], [
    "src",
    "read",
    "array<f32>",
  ]],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i < p.total) {
    let c = i % p.cols;
    let row = i / p.cols;
    let b = row / p.n;
    let r = row % p.n;
    cache[(b * p.rows + p.start + r) * p.cols + c] = src[i];
  }
}`,
};
