/**
 * Causal grouped-query attention fed by textures, for CPU adapters: the
 * same sums as {@linkcode attentionKernel} and its backward twins
 * (`attention.ts`), with q, k, v and dout read from rgba32float storage
 * textures instead of storage buffers. On lavapipe every storage-buffer load
 * runs as a per-lane scalar loop (~280 ns per 8-lane vec4, see
 * `matmul.ts`), and the storage-fed kernels load each key's D values of k
 * and v that way; a texel fetch brings 4 values inline (~8 ns). The 8 lanes
 * of a vector are 8 consecutive queries (or keys) of one head, so each
 * fetch of the other side's row is lane-uniform.
 *
 * Textures: q and dout are [B·Tq rows, H·D/4 texels] (texel (h·D/4 + c, row)
 * holds q[row, h·D + 4c..+3]); k and v are [B·kvRows, G·D/4]. Outputs are
 * bound as vec4 rows. The head dimension is unrolled in vec4 steps; every
 * sum over keys or queries runs in order, so reruns are bit-identical (the
 * sums over the head dimension group four products, so results differ from
 * the storage-fed kernels in the last bits).
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { memoKernel } from "./memo.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";
import { ATTENTION_UNIFORMS } from "./attention.ts";

/** Repeats `stmt` for # = 0..d/4−1 (one vec4 of the head dimension each). */
function unroll4(d: number, stmt: string): string {
  return Array.from(
    { length: d / 4 },
    (_, i) => stmt.replaceAll("#", String(i)),
  ).join("\n  ");
}

/** WGSL computing a query thread's indices and texel coordinates from `t`. */
const QUERY = (d: number) => `
  let i = t % p.tq;
  let bh = t / p.tq;
  let h = bh % p.heads;
  let b = bh / p.heads;
  let g = h / (p.heads / p.kvHeads);
  let o4 = ((b * p.tq + i) * p.heads + h) * ${d / 4}u;
  let pos = p.tk - p.tq + i;
  let qx = i32(h * ${d / 4}u);
  let qr = i32(b * p.tq + i);
  let kx = i32(g * ${d / 4}u);
  let kr0 = b * p.kvRows;`;

/** Storage textures of the forward and dq kernels. */
const TEXTURES = [["texq", "2d"], ["texk", "2d"], ["texv", "2d"]] as const;

/** Builds {@linkcode attentionTexKernel}'s kernel. */
function makeAttentionTexKernel(d: number): Kernel {
  return {
    name: `attention_tex_d${d}`,
    uniforms: ATTENTION_UNIFORMS,
    buffers: [
      ["out", "read_write", "array<vec4<f32>>"],
      ["lse", "read_write", "array<f32>"],
    ],
    storageTextures: TEXTURES,
    body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t >= p.batch * p.heads * p.tq) { return; }
  ${QUERY(d)}
  let scale = p.scale;
  var qv: array<vec4<f32>, ${d / 4}>;
  var acc: array<vec4<f32>, ${d / 4}>;
  ${
      unroll4(
        d,
        `qv[#] = textureLoad(texq, vec2<i32>(qx + #, qr)) * scale; acc[#] = vec4<f32>(0.0);`,
      )
    }
  var m = -3.4028235e38;
  var l = 0.0;
  for (var j = 0u; j <= pos; j++) {
    let kr = i32(kr0 + j);
    var s = 0.0;
    ${unroll4(d, `s += dot(qv[#], textureLoad(texk, vec2<i32>(kx + #, kr)));`)}
    if (s > m) {
      let c = exp(m - s);
      l = l * c;
      ${unroll4(d, `acc[#] = acc[#] * c;`)}
      m = s;
    }
    let w = exp(s - m);
    l += w;
    ${unroll4(d, `acc[#] += w * textureLoad(texv, vec2<i32>(kx + #, kr));`)}
  }
  ${unroll4(d, `out[o4 + #u] = acc[#] / l;`)}
  lse[t] = m + log(l);
}`,
  };
}

/** Forward (online softmax over keys 0..pos); writes out and lse. */
export const attentionTexKernel: typeof makeAttentionTexKernel = memoKernel(
  makeAttentionTexKernel,
);

/** Builds {@linkcode attentionDqTexKernel}'s kernel. */
function makeAttentionDqTexKernel(d: number): Kernel {
  return {
    name: `attention_dq_tex_d${d}`,
    uniforms: ATTENTION_UNIFORMS,
    buffers: [
      ["lse", "read", "array<f32>"],
      ["delta", "read", "array<f32>"],
      ["dq", "read_write", "array<vec4<f32>>"],
    ],
    storageTextures: [...TEXTURES, ["texdo", "2d"]],
    body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t >= p.batch * p.heads * p.tq) { return; }
  ${QUERY(d)}
  let scale = p.scale;
  var qv: array<vec4<f32>, ${d / 4}>;
  var dv: array<vec4<f32>, ${d / 4}>;
  var acc: array<vec4<f32>, ${d / 4}>;
  ${
      unroll4(
        d,
        `qv[#] = textureLoad(texq, vec2<i32>(qx + #, qr)) * scale; dv[#] = textureLoad(texdo, vec2<i32>(qx + #, qr)); acc[#] = vec4<f32>(0.0);`,
      )
    }
  let l = lse[t];
  let dl = delta[t];
  for (var j = 0u; j <= pos; j++) {
    let kr = i32(kr0 + j);
    var s = 0.0;
    var dp = 0.0;
    ${
      unroll4(
        d,
        `s += dot(qv[#], textureLoad(texk, vec2<i32>(kx + #, kr))); dp += dot(dv[#], textureLoad(texv, vec2<i32>(kx + #, kr)));`,
      )
    }
    let ds = exp(s - l) * (dp - dl);
    ${unroll4(d, `acc[#] += ds * textureLoad(texk, vec2<i32>(kx + #, kr));`)}
  }
  ${unroll4(d, `dq[o4 + #u] = acc[#] * scale;`)}
}`,
  };
}

/** dq = scale · Σ_j P_ij (dout_i · v_j − delta_i) k_j. */
export const attentionDqTexKernel: typeof makeAttentionDqTexKernel = memoKernel(
  makeAttentionDqTexKernel,
);

/** Builds {@linkcode attentionDkvTexKernel}'s kernel. */
function makeAttentionDkvTexKernel(d: number): Kernel {
  return {
    name: `attention_dkv_tex_d${d}`,
    uniforms: ATTENTION_UNIFORMS,
    buffers: [
      ["lse", "read", "array<f32>"],
      ["delta", "read", "array<f32>"],
      ["dk", "read_write", "array<vec4<f32>>"],
      ["dvo", "read_write", "array<vec4<f32>>"],
    ],
    storageTextures: [...TEXTURES, ["texdo", "2d"]],
    body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let t = ${FLAT_INDEX};
  if (t >= p.batch * p.kvHeads * p.kvRows) { return; }
  let j = t % p.kvRows;
  let bg = t / p.kvRows;
  let g = bg % p.kvHeads;
  let b = bg / p.kvHeads;
  let scale = p.scale;
  let tq = p.tq;
  let kx = i32(g * ${d / 4}u);
  let kr = i32(b * p.kvRows + j);
  let o4 = (b * p.kvRows + j) * p.kvHeads * ${d / 4}u + g * ${d / 4}u;
  var kv: array<vec4<f32>, ${d / 4}>;
  var vv: array<vec4<f32>, ${d / 4}>;
  var ak: array<vec4<f32>, ${d / 4}>;
  var av: array<vec4<f32>, ${d / 4}>;
  ${
      unroll4(
        d,
        `kv[#] = textureLoad(texk, vec2<i32>(kx + #, kr)); vv[#] = textureLoad(texv, vec2<i32>(kx + #, kr)); ak[#] = vec4<f32>(0.0); av[#] = vec4<f32>(0.0);`,
      )
    }
  if (j < p.tk) {
    let group = p.heads / p.kvHeads;
    let first = select(0u, j - (p.tk - tq), j > p.tk - tq);
    for (var hh = 0u; hh < group; hh++) {
      let h = g * group + hh;
      let qx = i32(h * ${d / 4}u);
      for (var i = first; i < tq; i++) {
        let r = (b * p.heads + h) * tq + i;
        let qr = i32(b * tq + i);
        var s = 0.0;
        var dp = 0.0;
        ${
      unroll4(
        d,
        `s += dot(textureLoad(texq, vec2<i32>(qx + #, qr)), kv[#]); dp += dot(textureLoad(texdo, vec2<i32>(qx + #, qr)), vv[#]);`,
      )
    }
        let pr = exp(s * scale - lse[r]);
        let ds = pr * (dp - delta[r]) * scale;
        ${
      unroll4(
        d,
        `av[#] += pr * textureLoad(texdo, vec2<i32>(qx + #, qr)); ak[#] += ds * textureLoad(texq, vec2<i32>(qx + #, qr));`,
      )
    }
      }
    }
  }
  ${unroll4(d, `dk[o4 + #u] = ak[#]; dvo[o4 + #u] = av[#];`)}
}`,
  };
}

/**
 * dk_j = scale · Σ_h Σ_i dS_ij q_i and dv_j = Σ_h Σ_i P_ij dout_i over the
 * query heads h of the key's group and the queries i that see key j; rows at
 * or past Tk are zero.
 */
export const attentionDkvTexKernel: typeof makeAttentionDkvTexKernel =
  memoKernel(makeAttentionDkvTexKernel);
