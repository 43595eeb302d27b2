/**
 * Token sampling, one workgroup per row, matching the CPU reference
 * (kernels/cpu/sample.ts) without sorting.
 *
 * Tokens are ordered by f32 logit descending, ties by id ascending. A prefix
 * of that order is named by a boundary (t, i): every token whose
 * order-preserving key exceeds t, plus those with key t and id ≤ i. Top-k,
 * top-p and the inverse-CDF draw each look for the shortest prefix whose count
 * or mass passes a target, by binary search on t (32 passes) and then on i
 * (log₂ V passes); each pass is a fixed-order reduction over the row.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { REDUCE_FNS, ROW_ARGS, ROW_INDEX, RW } from "./reduce.ts";

/**
 * tokens[r], logprobs[r] from logits [B,V] and uniforms [B]; `e` [B,V] is
 * scratch for exp((logit − max) / temperature).
 */
export const SAMPLE: Kernel = {
  name: "sample",
  uniforms: [
    ["rows", "u32"],
    ["vocab", "u32"],
    ["temperature", "f32"],
    ["topK", "u32"],
    ["topP", "f32"],
  ],
  buffers: [
    ["logits", "read", "array<f32>"],
    ["uniforms", "read", "array<f32>"],
    ["e", "read_write", "array<f32>"],
    ["tokens", "read_write", "array<i32>"],
    ["logprobs", "read_write", "array<f32>"],
  ],
  body: `${REDUCE_FNS}
var<workgroup> bestV: array<f32, ${RW}>;
var<workgroup> bestI: array<u32, ${RW}>;

// order-preserving map of f32 bits to u32: a larger logit gives a larger key
fn key(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  return select(u | 0x80000000u, ~u, (u & 0x80000000u) != 0u);
}
fn inPrefix(j: u32, k: u32, t: u32, i: u32) -> bool {
  return k > t || (k == t && j <= i);
}
// count (or mass) of the tokens in prefix (t, i) and in the limit prefix (lt, li)
fn measure(lid: u32, base: u32, t: u32, i: u32, lt: u32, li: u32, mass: bool) -> f32 {
  var s = 0.0;
  for (var j = lid; j < p.vocab; j += ${RW}u) {
    let k = key(logits[base + j]);
    if (inPrefix(j, k, t, i) && inPrefix(j, k, lt, li)) {
      s += select(1.0, e[base + j], mass);
    }
  }
  return reduceSum(lid, s);
}
fn meets(x: f32, goal: f32, strict: bool) -> bool {
  return select(x >= goal, x > goal, strict);
}
// the shortest prefix inside (lt, li) whose measure meets target; z = 0 if none
fn search(lid: u32, base: u32, lt: u32, li: u32, mass: bool, goal: f32, strict: bool) -> vec3<u32> {
  if (!meets(measure(lid, base, 0u, 0xffffffffu, lt, li, mass), goal, strict)) {
    return vec3<u32>(lt, li, 0u);
  }
  var lo = 0u;
  var hi = 0xffffffffu;
  while (lo < hi) {
    let mid = lo + (hi - lo) / 2u + 1u;
    if (meets(measure(lid, base, mid, 0xffffffffu, lt, li, mass), goal, strict)) {
      lo = mid;
    } else {
      hi = mid - 1u;
    }
  }
  var il = 0u;
  var ih = p.vocab - 1u;
  while (il < ih) {
    let mid = (il + ih) / 2u;
    if (meets(measure(lid, base, lo, mid, lt, li, mass), goal, strict)) {
      ih = mid;
    } else {
      il = mid + 1u;
    }
  }
  return vec3<u32>(lo, il, 1u);
}

@compute @workgroup_size(${RW}) fn main(${ROW_ARGS}) {
  let row = ${ROW_INDEX};
  if (row >= p.rows) { return; }
  let base = row * p.vocab;
  // argmax, lowest id on ties
  var m = -3.4028235e38;
  var arg = 0u;
  for (var j = lid; j < p.vocab; j += ${RW}u) {
    let x = logits[base + j];
    if (x > m) { m = x; arg = j; }
  }
  bestV[lid] = m;
  bestI[lid] = arg;
  workgroupBarrier();
  for (var s = ${RW / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      let v2 = bestV[lid + s];
      let i2 = bestI[lid + s];
      if (v2 > bestV[lid] || (v2 == bestV[lid] && i2 < bestI[lid])) {
        bestV[lid] = v2;
        bestI[lid] = i2;
      }
    }
    workgroupBarrier();
  }
  let mx = workgroupUniformLoad(&bestV[0]);
  let amax = bestI[0];
  if (p.temperature == 0.0) {
    var s = 0.0;
    for (var j = lid; j < p.vocab; j += ${RW}u) { s += exp(logits[base + j] - mx); }
    let total = reduceSum(lid, s);
    if (lid == 0u) {
      tokens[row] = i32(amax);
      logprobs[row] = -log(total);
    }
    return;
  }
  for (var j = lid; j < p.vocab; j += ${RW}u) {
    e[base + j] = exp((logits[base + j] - mx) / p.temperature);
  }
  storageBarrier();
  workgroupBarrier();
  var lt = 0u;
  var li = 0xffffffffu;
  if (p.topK > 0u && p.topK < p.vocab) {
    let r = search(lid, base, lt, li, false, f32(p.topK), false);
    lt = r.x;
    li = r.y;
  }
  var kept = measure(lid, base, lt, li, lt, li, true);
  if (p.topP < 1.0) {
    let r = search(lid, base, lt, li, true, p.topP * kept, false);
    if (r.z == 1u) {
      lt = r.x;
      li = r.y;
      kept = measure(lid, base, lt, li, lt, li, true);
    }
  }
  var r = search(lid, base, lt, li, true, uniforms[row] * kept, true);
  if (r.z == 0u) {
    // rounding left the draw past the kept mass: take the last kept token
    r = search(lid, base, lt, li, false, measure(lid, base, lt, li, lt, li, false), false);
  }
  if (lid == 0u) {
    tokens[row] = i32(r.y);
    logprobs[row] = log(e[base + r.y] / kept);
  }
}`,
};
