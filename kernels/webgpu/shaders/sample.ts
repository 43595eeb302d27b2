/**
 * Token sampling, one workgroup per row, matching the CPU reference
 * (kernels/cpu/sample.ts) without sorting.
 *
 * Tokens are ordered by f32 logit descending, ties by id ascending. A prefix
 * of that order is named by a boundary (t, i): every token whose
 * order-preserving key exceeds t, plus those with key t and id ≤ i. Top-k,
 * top-p and the inverse-CDF draw each look for the shortest prefix whose count
 * or mass passes a target, by binary search on t (32 passes; a pass is a
 * fixed-order reduction over the row), then on i only when tokens tie at t.
 * Min-p (between top-p and the draw) needs no search: it cuts the kept
 * prefix just before its first token in that order whose
 * e = exp((logit − max) / temperature) is below minP (the max token, e = 1,
 * always stays), found as the highest key among such tokens (tied tokens
 * share e, so they go together) — one pass, as the CPU reference's scan.
 * Lanes per row are many (up to 1024) on real GPUs; on CPU adapters as few
 * as keep a lane within lavapipe's 65535 loop iterations an invocation
 * (`cpuSampleLanes` in `backend.ts`: 8 at a 259-token vocabulary), since
 * every pass's reduction crosses workgroup barriers, which llvmpipe runs as
 * coroutine switches.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { memoKernel } from "./memo.ts";
import { reduceFns, ROW_ARGS, ROW_INDEX } from "./reduce.ts";

/** Builds {@linkcode sampleKernel}'s kernel. */
function makeSampleKernel(lanes: number): Kernel {
  return {
    name: `sample_${lanes}`,
    uniforms: [
      ["rows", "u32"],
      ["vocab", "u32"],
      ["temperature", "f32"],
      ["topK", "u32"],
      ["topP", "f32"],
      ["row0", "u32"],
      ["minP", "f32"],
    ],
    buffers: [
      ["logits", "read", "array<f32>"],
      ["uniforms", "read", "array<f32>"],
      ["e", "read_write", "array<f32>"],
      ["tokens", "read_write", "array<i32>"],
      ["logprobs", "read_write", "array<f32>"],
    ],
    body: `${reduceFns(lanes)}
var<workgroup> bestV: array<f32, ${lanes}>;
var<workgroup> bestI: array<u32, ${lanes}>;

// order-preserving map of f32 bits to u32: a larger logit gives a larger key
fn key(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  return select(u | 0x80000000u, ~u, (u & 0x80000000u) != 0u);
}
fn inPrefix(j: u32, k: u32, t: u32, i: u32) -> bool {
  return k > t || (k == t && j <= i);
}
// count (mass = 0) or mass of the tokens in prefix (t, i) and in the limit (lt, li)
fn measure(lid: u32, base: u32, t: u32, i: u32, lt: u32, li: u32, mass: u32) -> f32 {
  var s = 0.0;
  for (var j = lid; j < p.vocab; j += ${lanes}u) {
    let k = key(logits[base + j]);
    if (inPrefix(j, k, t, i) && inPrefix(j, k, lt, li)) {
      if (mass != 0u) { s += e[base + j]; } else { s += 1.0; }
    }
  }
  return reduceSum(lid, s);
}
fn meets(x: f32, goal: f32, strict: u32) -> bool {
  if (strict != 0u) { return x > goal; }
  return x >= goal;
}
// the shortest prefix inside (lt, li) whose measure meets goal; z = 0 if none
fn search(lid: u32, base: u32, lt: u32, li: u32, mass: u32, goal: f32, strict: u32) -> vec3<u32> {
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
  // the tokens with key lo inside the limit: usually one, whose id ends the prefix
  var c = 0.0;
  var first = 0xffffffffu;
  for (var j = lid; j < p.vocab; j += ${lanes}u) {
    let k = key(logits[base + j]);
    if (k == lo && inPrefix(j, k, lt, li)) {
      c += 1.0;
      first = min(first, j);
    }
  }
  let ties = reduceSum(lid, c);
  var il = reduceMinU(lid, first);
  if (ties > 1.0) {
    var ih = p.vocab - 1u;
    while (il < ih) {
      let mid = (il + ih) / 2u;
      if (meets(measure(lid, base, lo, mid, lt, li, mass), goal, strict)) {
        ih = mid;
      } else {
        il = mid + 1u;
      }
    }
  }
  return vec3<u32>(lo, il, 1u);
}

@compute @workgroup_size(${lanes}) fn main(${ROW_ARGS}) {
  let row = ${ROW_INDEX};
  if (row >= p.rows) { return; }
  let base = row * p.vocab;
  // argmax, lowest id on ties
  var m = -3.4028235e38;
  var arg = 0u;
  for (var j = lid; j < p.vocab; j += ${lanes}u) {
    let x = logits[base + j];
    if (x > m) { m = x; arg = j; }
  }
  bestV[lid] = m;
  bestI[lid] = arg;
  workgroupBarrier();
  for (var s = ${lanes / 2}u; s > 0u; s = s >> 1u) {
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
    var s0 = 0.0;
    for (var j = lid; j < p.vocab; j += ${lanes}u) { s0 += exp(logits[base + j] - mx); }
    let total = reduceSum(lid, s0);
    if (lid == 0u) {
      tokens[p.row0 + row] = i32(amax);
      logprobs[p.row0 + row] = -log(total);
    }
    return;
  }
  for (var j = lid; j < p.vocab; j += ${lanes}u) {
    e[base + j] = exp((logits[base + j] - mx) / p.temperature);
  }
  storageBarrier();
  workgroupBarrier();
  // stages: 0 top-k (skipped when off), 1 top-p over those (skipped when
  // off), then min-p (when on), 2 the draw: the first token whose cumulative
  // mass exceeds u · kept, or, if rounding leaves none, the last kept token.
  var lt = 0u;
  var li = 0xffffffffu;
  var kept = measure(lid, base, lt, li, lt, li, 1u);
  var tok = 0u;
  for (var stage = 0u; stage < 3u; stage++) {
    var mass = 1u;
    var goal = 0.0;
    var strict = 0u;
    var run = true;
    if (stage == 0u) {
      mass = 0u;
      goal = f32(p.topK);
      run = p.topK > 0u && p.topK < p.vocab;
    } else if (stage == 1u) {
      goal = p.topP * kept;
      run = p.topP < 1.0;
    } else {
      if (p.minP > 0.0) {
        // ~key of the first kept token (in order) below min-p, if any
        var below = 0xffffffffu;
        for (var j = lid; j < p.vocab; j += ${lanes}u) {
          let x = logits[base + j];
          let k = key(x);
          if (inPrefix(j, k, lt, li) && x != mx && e[base + j] < p.minP) {
            below = min(below, ~k);
          }
        }
        let cut = reduceMinU(lid, below);
        if (cut != 0xffffffffu) {
          lt = ~cut + 1u; // every key above the cut token's
          li = 0xffffffffu;
          kept = measure(lid, base, lt, li, lt, li, 1u);
        }
      }
      goal = uniforms[p.row0 + row] * kept;
      strict = 1u;
    }
    if (run) {
      let r = search(lid, base, lt, li, mass, goal, strict);
      if (stage < 2u) {
        if (r.z == 1u) {
          lt = r.x;
          li = r.y;
          kept = measure(lid, base, lt, li, lt, li, 1u);
        }
      } else if (r.z == 1u) {
        tok = r.y;
      } else {
        // the last kept token: the shortest prefix holding all kept tokens
        let n = measure(lid, base, lt, li, lt, li, 0u);
        tok = search(lid, base, lt, li, 0u, n, 0u).y;
      }
    }
  }
  if (lid == 0u) {
    tokens[p.row0 + row] = i32(tok);
    logprobs[p.row0 + row] = log(e[base + tok] / kept);
  }
}`,
  };
}

/**
 * The sampling kernel over `lanes` lanes per row (a power of two; more lanes
 * keep each lane's loop count under lavapipe's 65535-iteration cap at large
 * vocabularies). tokens[row0 + r], logprobs[row0 + r] from logits [B,V] and
 * uniforms[row0 + r] (row0 lets a batch too large for one binding run in row
 * groups); `e` [B,V] is scratch for exp((logit − max) / temperature).
 */
export const sampleKernel: typeof makeSampleKernel = memoKernel(
  makeSampleKernel,
);
