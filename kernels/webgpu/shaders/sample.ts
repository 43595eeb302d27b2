/**
 * Token sampling, one workgroup per row, matching the CPU reference
 * (kernels/cpu/sample.ts) without sorting.
 *
 * Tokens are ordered by f32 logit descending, ties by id ascending. A prefix
 * of that order is named by a boundary (t, i): every token whose
 * order-preserving key exceeds t, plus those with key t and id ≤ i. Top-k,
 * top-p and the inverse-CDF draw each look for the shortest prefix whose count
 * or mass passes a target, by binary search on t (32 passes) and then on i
 * (log₂ V passes); each pass sums over the row in id order.
 *
 * One thread per row, no workgroup barriers: on lavapipe a workgroup-parallel
 * version (the same searches over barrier reductions) returned wrong tokens
 * after its first search, so this simple form is the reference-matching one.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";

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
  body: `
// order-preserving map of f32 bits to u32: a larger logit gives a larger key
fn key(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  return select(u | 0x80000000u, ~u, (u & 0x80000000u) != 0u);
}
fn inPrefix(j: u32, k: u32, t: u32, i: u32) -> bool {
  return k > t || (k == t && j <= i);
}
// count (or mass) of the tokens in prefix (t, i) and in the limit prefix (lt, li)
fn measure(base: u32, t: u32, i: u32, lt: u32, li: u32, mass: u32) -> f32 {
  var s = 0.0;
  for (var j = 0u; j < p.vocab; j++) {
    let k = key(logits[base + j]);
    if (inPrefix(j, k, t, i) && inPrefix(j, k, lt, li)) {
      if (mass != 0u) { s += e[base + j]; } else { s += 1.0; }
    }
  }
  return s;
}
fn meets(x: f32, goal: f32, strict: u32) -> bool {
  if (strict != 0u) { return x > goal; }
  return x >= goal;
}
// the shortest prefix inside (lt, li) whose measure meets goal; z = 0 if none.
// Fixed trip counts (32 steps on the key, 21 on the id, V ≤ 2^21) and no
// branch around a barrier: lavapipe mis-ran data-dependent loops of barriers.
fn search(base: u32, lt: u32, li: u32, mass: u32, goal: f32, strict: u32) -> vec3<u32> {
  let ok = meets(measure(base, 0u, 0xffffffffu, lt, li, mass), goal, strict);
  var lo = 0u;
  var hi = 0xffffffffu;
  for (var it = 0u; it < 32u; it++) {
    let live = lo < hi;
    let mid = select(lo, lo + (hi - lo) / 2u + 1u, live);
    let m = meets(measure(base, mid, 0xffffffffu, lt, li, mass), goal, strict);
    lo = select(lo, mid, live && m);
    hi = select(hi, mid - 1u, live && !m);
  }
  var il = 0u;
  var ih = p.vocab - 1u;
  for (var it = 0u; it < 21u; it++) {
    let live = il < ih;
    let mid = (il + ih) / 2u;
    let m = meets(measure(base, lo, mid, lt, li, mass), goal, strict);
    ih = select(ih, mid, live && m);
    il = select(il, mid + 1u, live && !m);
  }
  return vec3<u32>(select(lt, lo, ok), select(li, il, ok), select(0u, 1u, ok));
}

@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let row = ${FLAT_INDEX};
  if (row >= p.rows) { return; }
  let base = row * p.vocab;
  // argmax, lowest id on ties
  var mx = logits[base];
  var amax = 0u;
  for (var j = 1u; j < p.vocab; j++) {
    let x = logits[base + j];
    if (x > mx) { mx = x; amax = j; }
  }
  if (p.temperature == 0.0) {
    var total = 0.0;
    for (var j = 0u; j < p.vocab; j++) { total += exp(logits[base + j] - mx); }
    tokens[row] = i32(amax);
    logprobs[row] = -log(total);
    return;
  }
  for (var j = 0u; j < p.vocab; j++) {
    e[base + j] = exp((logits[base + j] - mx) / p.temperature);
  }
  // stages: top-k (k = V keeps all), top-p over those, then the draw; if
  // rounding leaves the draw past the kept mass, the last kept token
  let k = select(p.vocab, p.topK, p.topK > 0u && p.topK < p.vocab);
  var lt = 0u;
  var li = 0xffffffffu;
  var kept = 0.0;
  var tok = 0u;
  for (var stage = 0u; stage < 3u; stage++) {
    var mass = 1u;
    var goal = f32(k);
    var strict = 0u;
    if (stage == 0u) {
      mass = 0u;
    } else if (stage == 1u) {
      goal = min(p.topP, 1.0) * kept;
    } else {
      goal = uniforms[row] * kept;
      strict = 1u;
    }
    let r = search(base, lt, li, mass, goal, strict);
    let take = r.z == 1u && (stage == 0u || (stage == 1u && p.topP < 1.0));
    lt = select(lt, r.x, take);
    li = select(li, r.y, take);
    tok = select(li, r.y, r.z == 1u);
    kept = measure(base, lt, li, lt, li, 1u);
  }
  tokens[row] = i32(tok);
  logprobs[row] = log(e[base + tok] / kept);
}`,
};
