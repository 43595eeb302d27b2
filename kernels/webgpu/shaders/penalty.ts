/**
 * The repetition penalty and the seen-token marks it reads, as the CPU
 * reference (kernels/cpu/penalty.ts) computes them.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";

/**
 * In place over `n` elements of logits and seen (one block of them): where
 * seen ≠ 0, x → x · penalty if x < 0, else x / penalty.
 */
export const REPETITION_PENALTY: Kernel = {
  name: "repetition_penalty",
  uniforms: [["n", "u32"], ["penalty", "f32"]],
  buffers: [["logits", "read_write", "array<f32>"], [
    "seen",
    "read",
    "array<f32>",
  ]],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i < p.n && seen[i] != 0.0) {
    let x = logits[i];
    logits[i] = select(x / p.penalty, x * p.penalty, x < 0.0);
  }
}`,
};

/**
 * One thread per token: tokens[i] (i32 [B·n], n per row) marks
 * seen[i / n, tokens[i]] = 1 where that element lies in the block of seen
 * bound (rows r0 … r1−1, columns c0 … c1−1 of the whole); other ids are
 * skipped. Threads that mark the same element write the same 1.
 */
export const MARK_TOKENS: Kernel = {
  name: "mark_tokens",
  uniforms: [
    ["total", "u32"],
    ["n", "u32"],
    ["r0", "u32"],
    ["r1", "u32"],
    ["c0", "u32"],
    ["c1", "u32"],
  ],
  buffers: [["tokens", "read", "array<i32>"], [
    "seen",
    "read_write",
    "array<f32>",
  ]],
  body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  if (i >= p.total) { return; }
  let row = i / p.n;
  let t = tokens[i];
  if (row < p.r0 || row >= p.r1 || t < i32(p.c0) || t >= i32(p.c1)) { return; }
  seen[(row - p.r0) * (p.c1 - p.c0) + u32(t) - p.c0] = 1.0;
}`,
};
