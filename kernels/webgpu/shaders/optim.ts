/**
 * AdamW over several tensors per dispatch, and the fixed-order sum of squares.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { memoKernel } from "./memo.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";
import { REDUCE_FNS, ROW_ARGS, ROW_INDEX, RW } from "./reduce.ts";

/** Builds {@linkcode adamwKernel}'s kernel. */
function makeAdamwKernel(count: number): Kernel {
  const uniforms: [string, "u32" | "f32"][] = [
    ["lr", "f32"],
    ["beta1", "f32"],
    ["beta2", "f32"],
    ["eps", "f32"],
    ["decay", "f32"],
    ["bc1", "f32"],
    ["bc2", "f32"],
    ["gradScale", "f32"],
  ];
  const buffers: [string, "read" | "read_write", string][] = [];
  const cases: string[] = [];
  for (let t = 0; t < count; t++) {
    uniforms.push([`end${t}`, "u32"]);
    buffers.push(
      [`p${t}`, "read_write", "array<f32>"],
      [`g${t}`, "read", "array<f32>"],
      [`m${t}`, "read_write", "array<f32>"],
      [`v${t}`, "read_write", "array<f32>"],
    );
    const start = t === 0 ? "0u" : `p.end${t - 1}`;
    cases.push(`if (i < p.end${t}) {
    let j = i - ${start};
    let g = g${t}[j] * p.gradScale;
    let m = p.beta1 * m${t}[j] + (1.0 - p.beta1) * g;
    let v = p.beta2 * v${t}[j] + (1.0 - p.beta2) * g * g;
    m${t}[j] = m;
    v${t}[j] = v;
    var w = p${t}[j];
    w = w - p.lr * p.decay * w;
    p${t}[j] = w - p.lr * (m / p.bc1) / (sqrt(v / p.bc2) + p.eps);
    return;
  }`);
  }
  return {
    name: `adamw_${count}`,
    uniforms,
    buffers,
    body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let i = ${FLAT_INDEX};
  ${cases.join(" else ")}
}`,
  };
}

/**
 * AdamW over `count` tensors in one dispatch: thread i updates element
 * i − end[t−1] of the tensor t whose range [end[t−1], end[t]) holds i.
 * Bindings per tensor: p, g, m, v.
 */
export const adamwKernel: typeof makeAdamwKernel = memoKernel(makeAdamwKernel);

/** Elements each workgroup of {@linkcode SUMSQ_PARTIAL} covers (at most). */
export const SUMSQ_CHUNK = 4096;

/** partial[offset + w] = Σ x² over chunk w of x (tree order within the chunk). */
export const SUMSQ_PARTIAL: Kernel = {
  name: "sumsq_partial",
  uniforms: [["n", "u32"], ["offset", "u32"]],
  buffers: [["x", "read", "array<f32>"], [
    "partial",
    "read_write",
    "array<f32>",
  ]],
  body: `${REDUCE_FNS}
@compute @workgroup_size(${RW}) fn main(${ROW_ARGS}) {
  let w = ${ROW_INDEX};
  let start = w * ${SUMSQ_CHUNK}u;
  let end = min(start + ${SUMSQ_CHUNK}u, p.n);
  var s = 0.0;
  for (var i = start + lid; i < end; i += ${RW}u) { let v = x[i]; s += v * v; }
  let total = reduceSum(lid, s);
  if (lid == 0u) { partial[p.offset + w] = total; }
}`,
};

/** out[0] = Σ partial[0..n) (one workgroup, fixed order). */
export const SUM_FINAL: Kernel = {
  name: "sum_final",
  uniforms: [["n", "u32"]],
  buffers: [["partial", "read", "array<f32>"], [
    "out",
    "read_write",
    "array<f32>",
  ]],
  body: `${REDUCE_FNS}
@compute @workgroup_size(${RW}) fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.n; i += ${RW}u) { s += partial[i]; }
  let total = reduceSum(lid, s);
  if (lid == 0u) { out[0] = total; }
}`,
};
