/**
 * Few-row x·Wᵀ fed by textures, for CPU adapters: decoding's products, one
 * to eight rows (a batch of sequences, one token each). The texture-fed
 * matmul tiles 16 rows (and runs slowly at 8 rows or fewer on lavapipe, see
 * `TEX_MIN_ROWS` in `matmul.ts`), and the storage-fed tiles load W through
 * per-lane loops (~2 ms for a 256×256 W); here a thread computes one output
 * column for every row, fetching W's row from a texture (vec4s along k),
 * the rows of x lane-uniformly, and the fused LoRA term the same way from
 * xa's and B's rows. Each output is a sum over k of four-product dots in k
 * order, the LoRA term's after it: reruns are bit-identical.
 *
 * Textures (rows in phases, see `texRowOf` in `matmul.ts`): x [M rows, K/4],
 * W [N rows, K/4], and with the LoRA term xa [M, R/4] and B [N, R/4]. c is
 * bound as floats: any N.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { memoKernel } from "./memo.ts";
import { FLAT, FLAT_INDEX, WG } from "./grid.ts";

/** Uniforms of {@linkcode gemvTexKernel}. */
export const GEMV_TEX_UNIFORMS = [
  ["N", "u32"],
  ["K4", "u32"],
  ["R4", "u32"],
  ["alpha", "f32"],
  ["scale", "f32"],
  ["ldc", "u32"],
  ["col0", "u32"],
  ["PH", "u32"],
  ["PR", "u32"],
  ["WPH", "u32"],
  ["WPR", "u32"],
  ["XPH", "u32"],
  ["XPR", "u32"],
  ["LPH", "u32"],
  ["LPR", "u32"],
] as const;

/** Most rows of one product ({@linkcode gemvTexKernel} unrolls them). */
export const GEMV_TEX_MAX_ROWS = 8;

/** Builds {@linkcode gemvTexKernel}'s kernel. */
function makeGemvTexKernel(rows: number, lora: boolean): Kernel {
  if (!Number.isInteger(rows) || rows < 1 || rows > GEMV_TEX_MAX_ROWS) {
    throw new RangeError(
      `gemvTexKernel: rows must be an integer in 1..${GEMV_TEX_MAX_ROWS}: got ${rows}`,
    );
  }
  const rs = Array.from({ length: rows }, (_, r) => r);
  const row = (r: number, ph: string, pr: string) =>
    `i32((${r}u % p.${ph}) * p.${pr} + ${r}u / p.${ph})`;
  const L: string[] = [];
  L.push(`let wr = i32((n % p.WPH) * p.WPR + n / p.WPH);`);
  for (const r of rs) {
    L.push(`let xr_${r} = ${row(r, "PH", "PR")};`, `var acc_${r} = 0.0;`);
  }
  L.push(`let K4 = i32(p.K4);`);
  L.push(`for (var q = 0; q < K4; q++) {`);
  L.push(`  let w = textureLoad(tw, vec2<i32>(q, wr));`);
  for (const r of rs) {
    L.push(`  acc_${r} += dot(textureLoad(tx, vec2<i32>(q, xr_${r})), w);`);
  }
  L.push(`}`);
  if (lora) {
    L.push(`let lr = i32((n % p.LPH) * p.LPR + n / p.LPH);`);
    L.push(`let scale = p.scale;`);
    for (const r of rs) L.push(`let ar_${r} = ${row(r, "XPH", "XPR")};`);
    L.push(`let R4 = i32(p.R4);`);
    L.push(`for (var q = 0; q < R4; q++) {`);
    L.push(`  let l = textureLoad(tlb, vec2<i32>(q, lr));`);
    for (const r of rs) {
      L.push(
        `  acc_${r} += dot(scale * textureLoad(txa, vec2<i32>(q, ar_${r})), l);`,
      );
    }
    L.push(`}`);
  }
  for (const r of rs) {
    L.push(`c[${r}u * p.ldc + p.col0 + n] = p.alpha * acc_${r};`);
  }
  return {
    name: `gemv_tex_m${rows}${lora ? "_lora" : ""}`,
    uniforms: GEMV_TEX_UNIFORMS,
    buffers: [["c", "read_write", "array<f32>"]],
    storageTextures: [
      ["tx", "2d"],
      ["tw", "2d"],
      ...(lora ? [["txa", "2d"] as const, ["tlb", "2d"] as const] : []),
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${FLAT}) {
  let n = ${FLAT_INDEX};
  if (n >= p.N) { return; }
  ${L.join("\n  ")}
}`,
  };
}

/**
 * `c[r, col0 + n] = alpha · (x_r · W_n + scale · xa_r · B_n)` for `rows`
 * rows, a thread per column n < N; `lora` adds the LoRA term.
 */
export const gemvTexKernel: typeof makeGemvTexKernel = memoKernel(
  makeGemvTexKernel,
);
