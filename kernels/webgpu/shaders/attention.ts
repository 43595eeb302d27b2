/**
 * Causal grouped-query attention, forward and backward. One thread per query
 * row (forward, dq) or per key row (dk, dv); every sum runs in key or query
 * order, so reruns are bit-identical. Kernels are specialised on the head
 * dimension D (private arrays of length D).
 *
 * Layout: q [B·Tq, H·D]; k, v [B·kvRows, G·D]; lse and delta [B·H·Tq]
 * (sequence-major, then head, then query). Query i sits at position
 * Tk − Tq + i and sees keys 0..that position.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { memoKernel } from "./memo.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";

/**
 * Repeats `stmt` for # = 0..d−1 (the head dimension is unrolled: lavapipe
 * stops an invocation after 65535 loop iterations, so loops over D inside the
 * loop over keys would cap the sequence length).
 */
function unroll(d: number, stmt: string): string {
  return Array.from({ length: d }, (_, i) => stmt.replaceAll("#", String(i)))
    .join("\n  ");
}

/** Uniforms of the attention kernels (and their texture-fed twins). */
export const ATTENTION_UNIFORMS = [
  ["batch", "u32"],
  ["tq", "u32"],
  ["tk", "u32"],
  ["kvRows", "u32"],
  ["heads", "u32"],
  ["kvHeads", "u32"],
  ["scale", "f32"],
] as const;

/** WGSL computing b, h, i, g, qo (q/out offset), pos and kv base offsets from `t`. */
const QUERY_INDEX = (d: number) => `
  let i = t % p.tq;
  let bh = t / p.tq;
  let h = bh % p.heads;
  let b = bh / p.heads;
  let g = h / (p.heads / p.kvHeads);
  let qo = (b * p.tq + i) * p.heads * ${d}u + h * ${d}u;
  let pos = p.tk - p.tq + i;
  let kstride = p.kvHeads * ${d}u;
  let kb = b * p.kvRows * kstride + g * ${d}u;`;

/** Builds {@linkcode attentionKernel}'s kernel. */
function makeAttentionKernel(d: number): Kernel {
  return {
    name: `attention_d${d}`,
    uniforms: ATTENTION_UNIFORMS,
    buffers: [
      ["q", "read", "array<f32>"],
      ["k", "read", "array<f32>"],
      ["v", "read", "array<f32>"],
      ["out", "read_write", "array<f32>"],
      ["lse", "read_write", "array<f32>"],
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t >= p.batch * p.heads * p.tq) { return; }
  ${QUERY_INDEX(d)}
  var qv: array<f32, ${d}>;
  var acc: array<f32, ${d}>;
  ${unroll(d, `qv[#] = q[qo + #u] * p.scale; acc[#] = 0.0;`)}
  var m = -3.4028235e38;
  var l = 0.0;
  for (var j = 0u; j <= pos; j++) {
    let ko = kb + j * kstride;
    var s = 0.0;
    ${unroll(d, `s += qv[#] * k[ko + #u];`)}
    if (s > m) {
      let c = exp(m - s);
      l = l * c;
      ${unroll(d, `acc[#] = acc[#] * c;`)}
      m = s;
    }
    let w = exp(s - m);
    l += w;
    ${unroll(d, `acc[#] += w * v[ko + #u];`)}
  }
  ${unroll(d, `out[qo + #u] = acc[#] / l;`)}
  lse[t] = m + log(l);
}`,
  };
}

/** Forward: online softmax over keys 0..pos; writes out and lse. */
export const attentionKernel: typeof makeAttentionKernel = memoKernel(
  makeAttentionKernel,
);

/** Builds {@linkcode attentionDeltaKernel}'s kernel. */
function makeAttentionDeltaKernel(d: number): Kernel {
  return {
    name: `attention_delta_d${d}`,
    uniforms: ATTENTION_UNIFORMS,
    buffers: [
      ["dout", "read", "array<f32>"],
      ["out", "read", "array<f32>"],
      ["delta", "read_write", "array<f32>"],
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t >= p.batch * p.heads * p.tq) { return; }
  ${QUERY_INDEX(d)}
  var s = 0.0;
  ${unroll(d, `s += dout[qo + #u] * out[qo + #u];`)}
  delta[t] = s;
}`,
  };
}

/** delta[t] = Σ_e dout · out over the head's D entries. */
export const attentionDeltaKernel: typeof makeAttentionDeltaKernel = memoKernel(
  makeAttentionDeltaKernel,
);

/** Builds {@linkcode attentionDqKernel}'s kernel. */
function makeAttentionDqKernel(d: number): Kernel {
  return {
    name: `attention_dq_d${d}`,
    uniforms: ATTENTION_UNIFORMS,
    buffers: [
      ["dout", "read", "array<f32>"],
      ["q", "read", "array<f32>"],
      ["k", "read", "array<f32>"],
      ["v", "read", "array<f32>"],
      ["lse", "read", "array<f32>"],
      ["delta", "read", "array<f32>"],
      ["dq", "read_write", "array<f32>"],
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t >= p.batch * p.heads * p.tq) { return; }
  ${QUERY_INDEX(d)}
  var qv: array<f32, ${d}>;
  var dv: array<f32, ${d}>;
  var acc: array<f32, ${d}>;
  ${
      unroll(
        d,
        `qv[#] = q[qo + #u] * p.scale; dv[#] = dout[qo + #u]; acc[#] = 0.0;`,
      )
    }
  let l = lse[t];
  let dl = delta[t];
  for (var j = 0u; j <= pos; j++) {
    let ko = kb + j * kstride;
    var s = 0.0;
    var dp = 0.0;
    ${unroll(d, `s += qv[#] * k[ko + #u]; dp += dv[#] * v[ko + #u];`)}
    let ds = exp(s - l) * (dp - dl);
    ${unroll(d, `acc[#] += ds * k[ko + #u];`)}
  }
  ${unroll(d, `dq[qo + #u] = acc[#] * p.scale;`)}
}`,
  };
}

/** dq = scale · Σ_j P_ij (dout_i · v_j − delta_i) k_j. */
export const attentionDqKernel: typeof makeAttentionDqKernel = memoKernel(
  makeAttentionDqKernel,
);

/** Builds {@linkcode attentionDkvKernel}'s kernel. */
function makeAttentionDkvKernel(d: number, chunked = false): Kernel {
  const keys = `p.batch * p.kvHeads * p.kvRows`;
  return {
    name: `attention_dkv${chunked ? "_chunked" : ""}_d${d}`,
    uniforms: chunked
      ? [...ATTENTION_UNIFORMS, ["qc", "u32"]]
      : ATTENTION_UNIFORMS,
    buffers: [
      ["dout", "read", "array<f32>"],
      ["q", "read", "array<f32>"],
      ["k", "read", "array<f32>"],
      ["v", "read", "array<f32>"],
      ["lse", "read", "array<f32>"],
      ["delta", "read", "array<f32>"],
      ["dk", "read_write", "array<f32>"],
      ["dvo", "read_write", "array<f32>"],
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let tc = ${FLAT_INDEX};
  ${
      chunked
        ? `let c = tc / (${keys});
  let t = tc % (${keys});
  // past the last chunk (chunks · qc ≥ tq > (chunks − 1) · qc)
  if (c * p.qc >= p.tq) { return; }
  let qEnd = min(p.tq, (c + 1u) * p.qc);
  let part = c * ${keys} * ${d}u;`
        : `let t = tc;
  if (t >= ${keys}) { return; }
  let qEnd = p.tq;
  let part = 0u;`
    }
  let j = t % p.kvRows;
  let bg = t / p.kvRows;
  let g = bg % p.kvHeads;
  let b = bg / p.kvHeads;
  let kstride = p.kvHeads * ${d}u;
  let ko = (b * p.kvRows + j) * kstride + g * ${d}u;
  var kv: array<f32, ${d}>;
  var vv: array<f32, ${d}>;
  var ak: array<f32, ${d}>;
  var av: array<f32, ${d}>;
  ${
      unroll(
        d,
        `kv[#] = k[ko + #u]; vv[#] = v[ko + #u]; ak[#] = 0.0; av[#] = 0.0;`,
      )
    }
  if (j < p.tk) {
    let group = p.heads / p.kvHeads;
    var first = select(0u, j - (p.tk - p.tq), j > p.tk - p.tq);
    ${chunked ? "first = max(first, c * p.qc);" : ""}
    for (var hh = 0u; hh < group; hh++) {
      let h = g * group + hh;
      for (var i = first; i < qEnd; i++) {
        let r = (b * p.heads + h) * p.tq + i;
        let qo = (b * p.tq + i) * p.heads * ${d}u + h * ${d}u;
        var s = 0.0;
        var dp = 0.0;
        ${unroll(d, `s += q[qo + #u] * kv[#]; dp += dout[qo + #u] * vv[#];`)}
        let pr = exp(s * p.scale - lse[r]);
        let ds = pr * (dp - delta[r]) * p.scale;
        ${unroll(d, `av[#] += pr * dout[qo + #u]; ak[#] += ds * q[qo + #u];`)}
      }
    }
  }
  ${unroll(d, `dk[part + ko + #u] = ak[#]; dvo[part + ko + #u] = av[#];`)}
}`,
  };
}

/**
 * dk_j = scale · Σ_h Σ_i dS_ij q_i and dv_j = Σ_h Σ_i P_ij dout_i over the
 * query heads h of the key's group and the queries i that see key j; rows at
 * or past Tk are zero.
 *
 * `chunked`: thread t + c·(keys) sums only the queries in chunk c
 * ([c·qc, (c+1)·qc)) and writes its partial sums at dk[c·size …], for
 * split_k.ts to add up in chunk order: one thread per key leaves most of a
 * real GPU idle (32 workgroups at B 8, T 128; ~1.4 ms a layer on the H200).
 */
export const attentionDkvKernel: typeof makeAttentionDkvKernel = memoKernel(
  makeAttentionDkvKernel,
);
