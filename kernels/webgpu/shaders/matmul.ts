/**
 * Matrix-product kernel generators: `c = alpha · op(a) op(b) + beta · c`, with
 * an optional fused LoRA term `+ scale · xa lbᵀ` (xa [M,R], lb [N,R]).
 *
 * Three families:
 * - `tex`: the fast path on CPU adapters (lavapipe). The operands are copied
 *   into read-only rgba32float storage textures and each invocation keeps a
 *   TM×TN register tile fed by texel loads; no workgroup memory, no barriers.
 *   What the lavapipe (Mesa 22.3, llvmpipe) findings behind it are:
 *   - a storage-buffer load inside a loop runs as a per-lane scalar loop with
 *     a branch per element (~280 ns per 8-lane vec4), and workgroup memory
 *     goes through the same path; a uniform-buffer load is a gather unless
 *     its offset is a constant (a loop counter is not), ~35 ns;
 *   - a sampled-texture fetch of rgba32float is an out-of-line function call
 *     (~28 ns, and it spills the tile around every call): only rgba8 formats
 *     are inlined; a storage-texture load is inlined (~8 ns), hence storage;
 *   - 8 invocations run as the 8 lanes of one AVX2 vector, so lanes run along
 *     columns: a's loads are lane-uniform (one cache line) and b's fall in a
 *     few lines; lanes along rows (8 rows, 8 pages per load) ran 6× slower;
 *   - at n ≥ 1024 the loop stalled on cache and TLB misses: a plain [K,N]
 *     texture of b puts every k in a new page. b is therefore copied as a
 *     texture array of column strips (one workgroup's columns, all k, one
 *     contiguous block), and workgroup x walks the row tiles so consecutive
 *     workgroups, which llvmpipe's threads take in order, share a strip
 *     (together ~1.5× at 2048);
 *   - x·Wᵀ (b [N,K]) fetching b's rows from a [N,K/4] texture puts the 8
 *     lanes on 8 rows of b, 8 pages per fetch at K ≥ 1024 (17 GFLOP/s at
 *     1024³ against 24 for x·W): the backend instead rewrites that texture
 *     into the strip array ({@linkcode TEX_TRANSPOSE}, 5-8% of a square
 *     product) and runs the strip kernel; the row-texture (`transB`) kernel
 *     is left for K past the texture height limit;
 *   - a·b + c is not fused (mul + add, even through `fma()`); summing a
 *     tile element's four products before adding them to the (spilled)
 *     accumulator beats one update per k by ~1.6×.
 *   Bigger tiles fetch less per FMA but spill more and compile slower
 *   (16×16: ~1.3 s, 16×32: ~3.5 s). What is left per 4 k of a tile element
 *   (16×16, perf): 4 mul + 4 add, the accumulator's load, store and a blend
 *   with the loop's exec mask (every loop-carried write is one), ~38% of
 *   the time in texel fetches (each ~45 instructions: bounds checks, 8
 *   per-lane 16-byte loads, a 4×8 transpose), all at an IPC of ~1.5.
 *   Tried without gain (within noise): 8 k per trip (12% fewer instructions,
 *   twice the loop body, lower IPC), pairwise sums, row-pair or per-strip
 *   statement orders (LLVM reschedules), 8×16, 12×16, 24×8, 32×8 tiles.
 *   Writing c through a write-only storage texture copied out afterwards
 *   (stores without per-lane branches) was within noise at 512 and 1024.
 *   Workgroups take tiles from an atomic counter (row tile first, so
 *   neighbours share a strip of b): llvmpipe hands each of its threads a
 *   fixed half of a dispatch's workgroups, and dynamic tiles keep both busy
 *   (512: ~21.5 → ~24, 1024: ~24 → ~28, 2048: ~24–28 → ~30 GFLOP/s). A
 *   workgroup takes at most TMAX tiles ({@linkcode texTilesPerGroup}):
 *   llvmpipe stops every loop of an invocation once their trips add up to
 *   65,535, without an error (uncapped, 4096³ gave half the outputs wrong).
 *   The epilogue (perf at 512³: ~11% of the time, then ~7%): llvmpipe
 *   reloads a uniform with a gather at every use that follows a store, and
 *   an `if` whose lanes are all off still runs its per-lane load loop, so
 *   the kernel reads its uniforms once before the tile loop and reads c
 *   (beta ≠ 0) only in an `accumulate` variant. Every store is still a
 *   per-lane loop (~45 instructions a lane for a vec4; texture stores are
 *   a loop per component, no cheaper).
 *   The LoRA term (`loraTex`) is R more k: xa's rows and lbᵀ's strips in
 *   textures, the same loop body (read from storage, its per-lane loads
 *   cost as much as the product itself at K = 256). Skinny products (the
 *   rank-r ones) use a 16×4 tile; aᵀ (weight gradients) is copied as rows
 *   and transposed by {@linkcode TEX_TRANSPOSE} into a's texture. Lanes
 *   along rows (wy > 1) ran 50-100× slower on a [1024,16] product.
 *   Operands whose rows cannot be copied in one go (buffer-to-texture copies
 *   need 256-byte row pitches): with K a multiple of 4, a's rows (and b's
 *   for x·Wᵀ) are copied in phases ({@linkcode texRowOf}: one copy per
 *   phase, the kernel maps rows; ~0.8 ms for [1024,704]); otherwise a
 *   packing kernel ({@linkcode texPackRowsKernel},
 *   {@linkcode texPackStripsKernel}) writes the texture, zero-padded along
 *   k: ~45 ns a texel (storage loads and texture stores; vec4 loads change
 *   little), ~8 ms for [1024,688].
 * - `reg`: the same register tile loading straight from storage (vec4 loads
 *   when the contiguous dimensions are multiples of 4): any shape, any
 *   transposes; the fallback where `tex` does not apply.
 * - `shared`: the classic workgroup-memory tiling for real GPUs.
 *
 * Loads clamp indices into range (or, in `tex`, read texels that only feed
 * columns past N), so any shape works; only stores are guarded.
 * Each output element is a sum over k in increasing order (in `tex`, sums of
 * four consecutive products added in increasing k): reruns are bit-identical.
 *
 * @module
 */

import type { Kernel } from "../context.ts";
import { memoKernel } from "./memo.ts";

/** The tile shape of one matmul variant. */
export interface MatmulConfig {
  /**
   * `tex`: register tile fed by texture fetches; `reg`: register tile fed by
   * storage loads; `shared`: workgroup-memory tiles.
   */
  kind: "tex" | "reg" | "shared";
  /** Rows per thread (a multiple of 4). */
  tm: number;
  /** Columns per thread (a multiple of 4). */
  tn: number;
  /** Threads per workgroup along columns. */
  wx: number;
  /** Threads per workgroup along rows. */
  wy: number;
  /** k-depth of a shared tile (`shared` only). */
  bk?: number;
}

/** Which form of the product a kernel computes. */
export interface MatmulShape {
  /** a is stored [K,M]. */
  transA: boolean;
  /** b is stored [N,K]. */
  transB: boolean;
  /** Use vec4 loads (see {@linkcode canVectorize}). */
  vec: boolean;
  /**
   * Fuse a LoRA term `scale · xa op(lb)`: "" none; "t" lb is [N,R] (used as
   * lbᵀ, the forward); "n" lb is [R,N] (the backward's dx).
   */
  lora: "" | "t" | "n";
  /**
   * Split the reduction: workgroup z sums k in [z·KS, (z+1)·KS) and stores
   * its partial product, unscaled, at c[z·M·N …] (reg tiles only, no LoRA
   * term; shaders/split_k.ts adds the partials up).
   */
  splitK?: boolean;
}

/** Whether vec4 loads are aligned for these dimensions and transposes. */
export function canVectorize(
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
): boolean {
  return (transA ? m % 4 === 0 : k % 4 === 0) &&
    (transB ? k % 4 === 0 : n % 4 === 0);
}

/** A short string naming a config, e.g. `reg16x16w8x8`. */
export function configName(c: MatmulConfig): string {
  return `${c.kind}${c.tm}x${c.tn}w${c.wx}x${c.wy}${c.bk ? `k${c.bk}` : ""}`;
}

/** Workgroup counts covering an [M,N] output with `c`. */
export function matmulGroups(
  c: MatmulConfig,
  m: number,
  n: number,
): [number, number] {
  return [Math.ceil(n / (c.tn * c.wx)), Math.ceil(m / (c.tm * c.wy))];
}

const UNIFORMS = [
  ["M", "u32"],
  ["N", "u32"],
  ["K", "u32"],
  ["R", "u32"],
  ["alpha", "f32"],
  ["beta", "f32"],
  ["scale", "f32"],
] as const;

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
const LANE = ["x", "y", "z", "w"];

/** Builds {@linkcode matmulKernel}'s kernel. */
function makeMatmulKernel(cfg: MatmulConfig, shape: MatmulShape): Kernel {
  if (cfg.kind === "tex") {
    throw new RangeError(
      `matmulKernel: cfg.kind must be "reg" or "shared": got "tex" (use texMatmulKernel)`,
    );
  }
  return cfg.kind === "reg" ? regKernel(cfg, shape) : sharedKernel(cfg, shape);
}

/** The kernel for `shape` with tile `cfg` (`reg` or `shared`; see {@linkcode texMatmulKernel}). */
export const matmulKernel: typeof makeMatmulKernel = memoKernel(
  makeMatmulKernel,
);

function kernelName(cfg: MatmulConfig, s: MatmulShape): string {
  return `matmul_${s.transA ? "t" : "n"}${s.transB ? "t" : "n"}${
    s.vec ? "_v4" : ""
  }` +
    `${s.lora ? `_lora${s.lora}` : ""}${s.splitK ? "_sk" : ""}_${
      configName(cfg)
    }`;
}

function buffers(
  s: MatmulShape,
  vecA: boolean,
  vecB: boolean,
): Kernel["buffers"] {
  const list: [string, "read" | "read_write", string][] = [
    ["a", "read", vecA ? "array<vec4<f32>>" : "array<f32>"],
    ["b", "read", vecB ? "array<vec4<f32>>" : "array<f32>"],
    ["c", "read_write", "array<f32>"],
  ];
  if (s.lora) {
    list.push(["xa", "read", "array<f32>"], ["lb", "read", "array<f32>"]);
  }
  return list;
}

/** Scalar index of a(m, k) and b(k, n) for the layout. */
function idxA(s: MatmulShape, m: string, k: string): string {
  return s.transA ? `(${k}) * p.M + (${m})` : `(${m}) * p.K + (${k})`;
}
function idxB(s: MatmulShape, k: string, n: string): string {
  return s.transB ? `(${n}) * p.K + (${k})` : `(${k}) * p.N + (${n})`;
}

/**
 * Epilogue: LoRA term, alpha/beta, guarded scalar stores of acc_i_jj, from
 * element `base` of c on.
 */
function epilogue(
  tm: number,
  tn: number,
  s: MatmulShape,
  rowOf: (i: number) => string,
  colOf: (j: number) => string,
  base = "0u",
): string {
  const lines: string[] = [];
  if (s.lora) {
    lines.push(`for (var r = 0u; r < p.R; r++) {`);
    for (const i of range(tm)) {
      lines.push(
        `  let x_${i} = p.scale * xa[min(${rowOf(i)}, p.M - 1u) * p.R + r];`,
      );
    }
    for (const j of range(tn)) {
      const cj = `min(${colOf(j)}, p.N - 1u)`;
      lines.push(
        `  let l_${j} = lb[${
          s.lora === "t" ? `${cj} * p.R + r` : `r * p.N + ${cj}`
        }];`,
      );
    }
    for (const jj of range(tn / 4)) {
      const v = `vec4<f32>(${
        range(4).map((q) => `l_${jj * 4 + q}`).join(", ")
      })`;
      lines.push(`  let lv_${jj} = ${v};`);
      for (const i of range(tm)) {
        lines.push(`  acc_${i}_${jj} += x_${i} * lv_${jj};`);
      }
    }
    lines.push(`}`);
  }
  for (const i of range(tm)) {
    lines.push(`if (${rowOf(i)} < p.M) {`);
    lines.push(`  let o = ${base} + (${rowOf(i)}) * p.N;`);
    for (const jj of range(tn / 4)) {
      for (const q of range(4)) {
        const col = colOf(jj * 4 + q);
        lines.push(`  if (${col} < p.N) {`);
        lines.push(`    var v = p.alpha * acc_${i}_${jj}.${LANE[q]};`);
        lines.push(`    if (p.beta != 0.0) { v += p.beta * c[o + ${col}]; }`);
        lines.push(`    c[o + ${col}] = v;`);
        lines.push(`  }`);
      }
    }
    lines.push(`}`);
  }
  return lines.join("\n  ");
}

function regKernel(cfg: MatmulConfig, s: MatmulShape): Kernel {
  const { tm, tn, wx, wy } = cfg;
  if (s.splitK && s.lora) {
    throw new RangeError("matmulKernel: splitK takes no LoRA term");
  }
  const vecA = s.vec, vecB = s.vec;
  const L: string[] = [];
  // The k range this workgroup sums (all of it unless split; KS % 4 == 0).
  L.push(
    s.splitK
      ? `let kBeg = gid.z * p.KS; let kEnd = min(kBeg + p.KS, p.K);`
      : `let kBeg = 0u; let kEnd = p.K;`,
  );
  const row = (i: number) => `(m0 + ${i}u)`;
  const col = (j: number) => `(n0 + ${j}u)`;
  for (const i of range(tm)) {
    for (const jj of range(tn / 4)) {
      L.push(`var acc_${i}_${jj} = vec4<f32>(0.0);`);
    }
  }
  // clamped row / column indices used by the loads
  for (const i of range(tm)) L.push(`let r_${i} = min(${row(i)}, p.M - 1u);`);
  for (const j of range(tn)) L.push(`let c_${j} = min(${col(j)}, p.N - 1u);`);
  let k0 = "kBeg";
  if (s.vec) {
    // a(i, kk) and bvec(jj, kk) expressions for one k-block of 4
    const aExpr: (i: number, kk: number) => string = s.transA
      ? (i, kk) => `a_${kk}_${i >> 2}.${LANE[i & 3]}`
      : (i, kk) => `a_${i}.${LANE[kk]}`;
    const bExpr: (jj: number, kk: number) => string = s.transB
      ? (jj, kk) =>
        `vec4<f32>(${
          range(4).map((q) => `b_${jj * 4 + q}.${LANE[kk]}`).join(", ")
        })`
      : (jj, kk) => `b_${kk}_${jj}`;
    if (s.transA) {
      for (const ii of range(tm / 4)) {
        L.push(`let ma_${ii} = min(m0 + ${ii * 4}u, p.M - 4u) / 4u;`);
      }
    }
    if (!s.transB) {
      for (const jj of range(tn / 4)) {
        L.push(`let nb_${jj} = min(n0 + ${jj * 4}u, p.N - 4u) / 4u;`);
      }
    }
    L.push(`let K4 = p.K / 4u;`);
    L.push(`for (var kq = kBeg / 4u; kq < kEnd / 4u; kq++) {`);
    L.push(`  let k = kq * 4u;`);
    if (s.transA) {
      for (const kk of range(4)) {
        for (const ii of range(tm / 4)) {
          L.push(
            `  let a_${kk}_${ii} = a[(k + ${kk}u) * (p.M / 4u) + ma_${ii}];`,
          );
        }
      }
    } else {
      for (const i of range(tm)) L.push(`  let a_${i} = a[r_${i} * K4 + kq];`);
    }
    if (s.transB) {
      for (const j of range(tn)) L.push(`  let b_${j} = b[c_${j} * K4 + kq];`);
    } else {
      for (const kk of range(4)) {
        for (const jj of range(tn / 4)) {
          L.push(
            `  let b_${kk}_${jj} = b[(k + ${kk}u) * (p.N / 4u) + nb_${jj}];`,
          );
        }
      }
    }
    for (const kk of range(4)) {
      for (const jj of range(tn / 4)) {
        L.push(`  let bv_${kk}_${jj} = ${bExpr(jj, kk)};`);
        for (const i of range(tm)) {
          L.push(`  acc_${i}_${jj} += ${aExpr(i, kk)} * bv_${kk}_${jj};`);
        }
      }
    }
    L.push(`}`);
    k0 = "kEnd / 4u * 4u";
  }
  // scalar loop (the whole product without vec4, or the k tail with it)
  const ldA = (m: string, k: string) =>
    vecA
      ? `a[(${idxA(s, m, k)}) / 4u][(${idxA(s, m, k)}) % 4u]`
      : `a[${idxA(s, m, k)}]`;
  const ldB = (k: string, n: string) =>
    vecB
      ? `b[(${idxB(s, k, n)}) / 4u][(${idxB(s, k, n)}) % 4u]`
      : `b[${idxB(s, k, n)}]`;
  L.push(`for (var k = ${k0}; k < kEnd; k++) {`);
  for (const i of range(tm)) L.push(`  let a_${i} = ${ldA(`r_${i}`, "k")};`);
  for (const j of range(tn)) L.push(`  let b_${j} = ${ldB("k", `c_${j}`)};`);
  for (const jj of range(tn / 4)) {
    L.push(
      `  let bv_${jj} = vec4<f32>(${
        range(4).map((q) => `b_${jj * 4 + q}`).join(", ")
      });`,
    );
    for (const i of range(tm)) L.push(`  acc_${i}_${jj} += a_${i} * bv_${jj};`);
  }
  L.push(`}`);
  L.push(
    epilogue(tm, tn, s, row, col, s.splitK ? "gid.z * p.M * p.N" : "0u"),
  );
  return {
    name: kernelName(cfg, s),
    uniforms: s.splitK ? [...UNIFORMS, ["KS", "u32"]] : UNIFORMS,
    buffers: buffers(s, vecA, vecB),
    body:
      `@compute @workgroup_size(${wx}, ${wy}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * ${tn}u;
  let m0 = gid.y * ${tm}u;
  ${L.join("\n  ")}
}`,
  };
}

/**
 * Workgroup-memory tiling: the workgroup stages a (TM·WY)×BK slice of op(a)
 * and a BK×(TN·WX) slice of op(b), then each thread accumulates its TM×TN
 * tile from workgroup memory.
 */
function sharedKernel(cfg: MatmulConfig, s: MatmulShape): Kernel {
  const { tm, tn, wx, wy } = cfg;
  const bk = cfg.bk ?? 16;
  const bm = tm * wy, bn = tn * wx, threads = wx * wy;
  const L: string[] = [];
  for (const i of range(tm)) {
    for (const jj of range(tn / 4)) {
      L.push(`var acc_${i}_${jj} = vec4<f32>(0.0);`);
    }
  }
  L.push(`let tid = lid.y * ${wx}u + lid.x;`);
  L.push(`let bm0 = wg.y * ${bm}u;`);
  L.push(`let bn0 = wg.x * ${bn}u;`);
  L.push(`for (var k0 = 0u; k0 < p.K; k0 += ${bk}u) {`);
  // cooperative loads, zero outside the matrix
  L.push(`  for (var e = tid; e < ${bm * bk}u; e += ${threads}u) {`);
  L.push(`    let mm = e / ${bk}u; let kk = e % ${bk}u;`);
  L.push(`    let gm = bm0 + mm; let gk = k0 + kk;`);
  L.push(`    var v = 0.0;`);
  L.push(`    if (gm < p.M && gk < p.K) { v = a[${idxA(s, "gm", "gk")}]; }`);
  L.push(`    ta[kk * ${bm}u + mm] = v;`);
  L.push(`  }`);
  L.push(`  for (var e = tid; e < ${bn * bk}u; e += ${threads}u) {`);
  L.push(`    let nn = e % ${bn}u; let kk = e / ${bn}u;`);
  L.push(`    let gn = bn0 + nn; let gk = k0 + kk;`);
  L.push(`    var v = 0.0;`);
  L.push(`    if (gn < p.N && gk < p.K) { v = b[${idxB(s, "gk", "gn")}]; }`);
  L.push(`    tb[kk * ${bn}u + nn] = v;`);
  L.push(`  }`);
  L.push(`  workgroupBarrier();`);
  L.push(`  for (var kk = 0u; kk < ${bk}u; kk++) {`);
  for (const i of range(tm)) {
    L.push(`    let a_${i} = ta[kk * ${bm}u + lid.y * ${tm}u + ${i}u];`);
  }
  for (const jj of range(tn / 4)) {
    L.push(
      `    let bv_${jj} = vec4<f32>(${
        range(4).map((q) => `tb[kk * ${bn}u + lid.x * ${tn}u + ${jj * 4 + q}u]`)
          .join(", ")
      });`,
    );
    for (const i of range(tm)) {
      L.push(`    acc_${i}_${jj} += a_${i} * bv_${jj};`);
    }
  }
  L.push(`  }`);
  L.push(`  workgroupBarrier();`);
  L.push(`}`);
  const row = (i: number) => `(bm0 + lid.y * ${tm}u + ${i}u)`;
  const col = (j: number) => `(bn0 + lid.x * ${tn}u + ${j}u)`;
  L.push(epilogue(tm, tn, s, row, col));
  return {
    name: kernelName(cfg, s),
    uniforms: UNIFORMS,
    buffers: buffers(s, false, false),
    body: `var<workgroup> ta: array<f32, ${bm * bk}>;
var<workgroup> tb: array<f32, ${bn * bk}>;
@compute @workgroup_size(${wx}, ${wy}) fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  ${L.join("\n  ")}
}`,
  };
}

/**
 * The texture row holding matrix row `m` of a `tex` operand texture whose
 * rows are copied in `ph` phases of `pr` rows: phase j holds rows j, j + ph,
 * j + 2·ph, … from texture row j·pr. One copy per phase, with a row pitch of
 * ph rows, meets the 256-byte pitch of buffer-to-texture copies where one row
 * does not (K a multiple of 4 but not of 64: ph = 64 / gcd(K, 64)).
 */
export function texRowOf(m: number, ph: number, pr: number): number {
  return (m % ph) * pr + Math.floor(m / ph);
}

/**
 * Uniforms of a `tex` kernel. The dispatch covers an M×N block of c whose
 * element (0,0) is c[row0, col0] (c has `ldc` columns); the LoRA operands are
 * indexed by the same global rows and columns. a's texture holds its rows
 * in PH phases of PR rows (see {@linkcode texRowOf}); PH = 1, PR = M is the
 * plain layout. With the LoRA term on textures (`loraTex`), xa's texture
 * holds its rows in PHX phases of PRX rows.
 */
export const TEX_UNIFORMS = [
  ["M", "u32"],
  ["N", "u32"],
  ["K", "u32"],
  ["R", "u32"],
  ["alpha", "f32"],
  ["beta", "f32"],
  ["scale", "f32"],
  ["ldc", "u32"],
  ["row0", "u32"],
  ["col0", "u32"],
  ["PH", "u32"],
  ["PR", "u32"],
  ["TMAX", "u32"],
  ["PHX", "u32"],
  ["PRX", "u32"],
] as const;

/**
 * Fewest workgroups of one `tex` dispatch (unless it has fewer tiles): each
 * loops taking tiles until none are left or it has taken TMAX (see
 * {@linkcode texMatmulKernel}), so a few per llvmpipe thread suffice; the
 * rest take no tile and return.
 */
export const TEX_WORKGROUPS = 64;

/**
 * Workgroup counts of a `tex` kernel over an [M,N] block of tiles (TM·WY rows
 * by TN·WX columns): {@linkcode TEX_WORKGROUPS}, or more when that many
 * taking `tmax` tiles each could not cover them all, never more than tiles.
 */
export function texMatmulGroups(
  c: MatmulConfig,
  m: number,
  n: number,
  tmax: number,
): [number, number] {
  const tiles = Math.ceil(m / (c.tm * c.wy)) * Math.ceil(n / (c.tn * c.wx));
  return [
    Math.min(tiles, Math.max(TEX_WORKGROUPS, Math.ceil(tiles / tmax))),
    1,
  ];
}

/**
 * Accumulating products (beta ≠ 0) of at most this many rows do not run
 * texture-fed: on lavapipe an epilogue that skips every row past the 8th of
 * a tile (`if (m0 + i < M)` false for all of them) makes a dispatch take
 * ~12-15 ms whatever its size, against ~0.6 ms at 9 rows; the time is in
 * the driver, not the kernel's code. Without beta the kernel stores those
 * rows onto row M − 1 instead (they hold its values), and runs at ~0.6 ms.
 */
export const TEX_MIN_ROWS = 8;

/**
 * Loop trips one invocation may make: llvmpipe stops every loop of an
 * invocation, without an error, once their trips add up to 65,535.
 */
export const TEX_LOOP_BUDGET = 60_000;

/**
 * Most tiles one workgroup of a `tex` kernel takes (the `TMAX` uniform): its
 * k loops (K/4 trips a tile, plus R for the LoRA term and the tile loop's
 * own) stay within {@linkcode TEX_LOOP_BUDGET}; {@linkcode texMatmulGroups}
 * launches enough workgroups for every tile.
 */
export function texTilesPerGroup(k4: number, r: number): number {
  return Math.max(1, Math.floor(TEX_LOOP_BUDGET / (k4 + r + 2)));
}

/**
 * Texels per row of one column strip of b in a `tex` kernel without
 * `transB`: the strip holds the TN·WX columns of one workgroup.
 */
export function texStripWidth(c: MatmulConfig): number {
  return (c.tn * c.wx) / 4;
}

/** Builds {@linkcode texMatmulKernel}'s kernel. */
function makeTexMatmulKernel(
  cfg: MatmulConfig,
  s: {
    transB: boolean;
    lora: "" | "t" | "n";
    phased?: boolean;
    accumulate?: boolean;
    loraTex?: boolean;
    scalarC?: boolean;
  },
): Kernel {
  if (s.loraTex && (!s.lora || s.transB)) {
    throw new RangeError(
      `texMatmulKernel: loraTex needs a LoRA term and the strip kernel (transB false)`,
    );
  }
  const { tm, tn, wx, wy } = cfg;
  if (tm % 1 !== 0 || tn % 4 !== 0 || tm < 1 || tn < 4) {
    throw new RangeError(
      `texMatmulKernel: tn must be a positive multiple of 4 and tm a positive integer: got tm ${tm}, tn ${tn}`,
    );
  }
  const L: string[] = [];
  const n4 = tn / 4;
  // tiles are taken from a counter, row tile fastest, so consecutive tiles
  // share a strip of b
  L.push(`let uM = p.M;`, `let uN4 = p.N / 4u;`, `let alpha = p.alpha;`);
  L.push(`let row0 = p.row0;`, `let ldc4 = p.ldc / 4u;`);
  L.push(`let col04 = p.col0 / 4u;`);
  if (s.scalarC) {
    L.push(`let uN = p.N;`, `let ldc = p.ldc;`, `let col0 = p.col0;`);
  }
  if (s.accumulate) L.push(`let beta = p.beta;`);
  L.push(`let MT = (p.M + ${tm * wy - 1}u) / ${tm * wy}u;`);
  L.push(`let T = MT * ((p.N + ${tn * wx - 1}u) / ${tn * wx}u);`);
  L.push(`for (var taken = 0u; taken < p.TMAX; taken++) {`);
  L.push(`workgroupBarrier();`);
  L.push(
    `if (lid.x == 0u && lid.y == 0u) { tile = atomicAdd(&ctr[0], 1u); }`,
  );
  L.push(`let t = workgroupUniformLoad(&tile);`);
  L.push(`if (t >= T) { break; }`);
  L.push(`let wg = vec2<u32>(t % MT, t / MT);`);
  // lanes run along columns (8 of them make one AVX2 vector on llvmpipe), so
  // a's fetches are lane-uniform and b's fall in one strip
  L.push(`let m0 = (wg.x * ${wy}u + lid.y) * ${tm}u;`);
  L.push(`let n0 = (wg.y * ${wx}u + lid.x) * ${tn}u;`);
  for (const i of range(tm)) {
    for (const jj of range(n4)) L.push(`var acc_${i}_${jj} = vec4<f32>(0.0);`);
  }
  // clamped texel rows (out-of-range lanes recompute the last row)
  for (const i of range(tm)) {
    L.push(`let ma_${i} = min(m0 + ${i}u, p.M - 1u);`);
    L.push(
      s.phased
        ? `let ra_${i} = i32((ma_${i} % p.PH) * p.PR + ma_${i} / p.PH);`
        : `let ra_${i} = i32(ma_${i});`,
    );
  }
  if (s.transB) {
    for (const j of range(tn)) {
      L.push(`let rb_${j} = i32(min(n0 + ${j}u, p.N - 1u));`);
    }
  } else {
    // texel column in this workgroup's strip; columns past N read stale
    // texels or zeros, but they are never stored
    L.push(`let sb = i32(wg.y);`);
    for (const jj of range(n4)) {
      L.push(`let xb_${jj} = i32(lid.x * ${n4}u + ${jj}u);`);
    }
  }
  // one trip per 4 k: K/4 ≤ the texture width limit, far below lavapipe's
  // 65,535-iteration cap
  L.push(`let K4 = i32(p.K / 4u);`);
  L.push(`for (var q = 0; q < K4; q++) {`);
  for (const i of range(tm)) {
    L.push(`  let a_${i} = textureLoad(ta, vec2<i32>(q, ra_${i}));`);
  }
  if (s.transB) {
    // both operands run along k: each output is a dot product of texels
    for (const j of range(tn)) {
      L.push(`  let b_${j} = textureLoad(tb, vec2<i32>(q, rb_${j}));`);
    }
    // accumulator-major order keeps each accumulator in a register for its
    // four products (the tile itself does not fit in registers)
    for (const i of range(tm)) {
      for (const jj of range(n4)) {
        L.push(
          `  acc_${i}_${jj} += vec4<f32>(${
            range(4).map((c) => `dot(a_${i}, b_${jj * 4 + c})`).join(", ")
          });`,
        );
      }
    }
  } else {
    for (const kk of range(4)) {
      for (const jj of range(n4)) {
        L.push(
          `  let b_${kk}_${jj} = textureLoad(tb, vec2<i32>(xb_${jj}, q * 4 + ${kk}), sb);`,
        );
      }
    }
    // the four products of one accumulator are summed first: one load and
    // store of a spilled accumulator per four FMAs (per-k order is ~2× slower)
    for (const i of range(tm)) {
      for (const jj of range(n4)) {
        L.push(
          `  acc_${i}_${jj} += ${
            range(4).map((kk) => `a_${i}.${LANE[kk]} * b_${kk}_${jj}`).join(
              " + ",
            )
          };`,
        );
      }
    }
  }
  L.push(`}`);
  if (s.loraTex) {
    // the LoRA term as R more k: xa's texel rows (scaled) against lbᵀ's
    // strips, the same loop body as the product's
    for (const i of range(tm)) {
      L.push(`let rx_${i} = i32((ma_${i} % p.PHX) * p.PRX + ma_${i} / p.PHX);`);
    }
    L.push(`let scale = p.scale;`);
    L.push(`let R4 = i32(p.R / 4u);`);
    L.push(`for (var q = 0; q < R4; q++) {`);
    for (const i of range(tm)) {
      L.push(`  let x_${i} = scale * textureLoad(txa, vec2<i32>(q, rx_${i}));`);
    }
    for (const kk of range(4)) {
      for (const jj of range(n4)) {
        L.push(
          `  let l_${kk}_${jj} = textureLoad(tlb, vec2<i32>(xb_${jj}, q * 4 + ${kk}), sb);`,
        );
      }
    }
    for (const i of range(tm)) {
      for (const jj of range(n4)) {
        L.push(
          `  acc_${i}_${jj} += ${
            range(4).map((kk) => `x_${i}.${LANE[kk]} * l_${kk}_${jj}`).join(
              " + ",
            )
          };`,
        );
      }
    }
    L.push(`}`);
  } else if (s.lora) {
    L.push(`for (var r = 0u; r < p.R; r++) {`);
    for (const i of range(tm)) {
      L.push(
        `  let x_${i} = p.scale * xa[(p.row0 + ma_${i}) * p.R + r];`,
      );
    }
    for (const j of range(tn)) {
      const col = `(p.col0 + min(n0 + ${j}u, p.N - 1u))`;
      L.push(
        `  let l_${j} = lb[${
          s.lora === "t" ? `${col} * p.R + r` : `r * p.ldc + ${col}`
        }];`,
      );
    }
    for (const jj of range(n4)) {
      L.push(
        `  let lv_${jj} = vec4<f32>(${
          range(4).map((c) => `l_${jj * 4 + c}`).join(", ")
        });`,
      );
      for (const i of range(tm)) {
        L.push(`  acc_${i}_${jj} += x_${i} * lv_${jj};`);
      }
    }
    L.push(`}`);
  }
  // uniforms read once (llvmpipe reloads a uniform at every use past a
  // store); beta's read of c is in the kernel only when it is needed
  for (const i of range(tm)) {
    // rows past M: without beta they hold row M − 1's values (their a rows
    // are clamped), stored again onto row M − 1 rather than skipped (on
    // lavapipe an epilogue that skips every row past the 8th runs ~20×
    // slower); with beta, c is read, so they are skipped
    const r = s.accumulate ? `m0 + ${i}u` : `min(m0 + ${i}u, uM - 1u)`;
    L.push(s.accumulate ? `if (m0 + ${i}u < uM) {` : `{`);
    if (s.scalarC) {
      // N not a multiple of 4: c's rows are not vec4-aligned, one float
      // at a time
      L.push(`  let o = (row0 + ${r}) * ldc + col0 + n0;`);
      for (const j of range(tn)) {
        const e = `acc_${i}_${j >> 2}.${LANE[j & 3]}`;
        const v = `alpha * ${e}${s.accumulate ? ` + beta * c[o + ${j}u]` : ""}`;
        L.push(`  if (n0 + ${j}u < uN) { c[o + ${j}u] = ${v}; }`);
      }
    } else {
      L.push(`  let o = (row0 + ${r}) * ldc4 + col04 + n0 / 4u;`);
      for (const jj of range(n4)) {
        const v = `alpha * acc_${i}_${jj}${
          s.accumulate ? ` + beta * c[o + ${jj}u]` : ""
        }`;
        L.push(`  if (n0 / 4u + ${jj}u < uN4) { c[o + ${jj}u] = ${v}; }`);
      }
    }
    L.push(`}`);
  }
  L.push(`}`);
  const buffers: [string, "read" | "read_write", string][] = [
    ["c", "read_write", s.scalarC ? "array<f32>" : "array<vec4<f32>>"],
    ["ctr", "read_write", "array<atomic<u32>>"],
  ];
  if (s.lora && !s.loraTex) {
    buffers.push(["xa", "read", "array<f32>"], ["lb", "read", "array<f32>"]);
  }
  return {
    name: `matmul_tex_n${s.transB ? "t" : "n"}${
      s.lora ? `_lora${s.lora}${s.loraTex ? "x" : ""}` : ""
    }${s.phased ? "_ph" : ""}${s.accumulate ? "_acc" : ""}${
      s.scalarC ? "_sc" : ""
    }_${configName(cfg)}`,
    uniforms: TEX_UNIFORMS,
    buffers,
    storageTextures: [
      ["ta", "2d"],
      ["tb", s.transB ? "2d" : "2d-array"],
      ...(s.loraTex
        ? [["txa", "2d"] as const, ["tlb", "2d-array"] as const]
        : []),
    ],
    body: `var<workgroup> tile: u32;
@compute @workgroup_size(${wx}, ${wy}) fn main(
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  ${L.join("\n  ")}
}`,
  };
}

/**
 * The texture-fed kernel (`cfg.kind` "tex"): `c = alpha · a op(b) + beta · c`
 * (+ the fused LoRA term), both operands in read-only rgba32float storage
 * textures. a is `ta`, K/4 texels wide and M rows: texel (q, m) holds
 * a[m, 4q..4q+3]. With `transB`, b is [N,K] and `tb` is laid out like a
 * (texel (q, n) = b[n, 4q..4q+3]). Without it, b is [K,N] and `tb` is a 2-D
 * array of column strips ({@linkcode texStripWidth} texels wide, K rows):
 * texel (x, k) of layer s holds b[k, 4(s·W + x)..+3], so the strip a
 * workgroup walks down k is one contiguous block of memory (a plain [K,N]
 * texture puts every k in a new page). With `phased`, a's rows are in
 * phases (uniforms PH, PR; {@linkcode texRowOf}; without it they are
 * ignored). Needs K (texels past the operands' k zero),
 * N, ldc and col0 to be multiples of 4 (with `scalarC`, N and ldc need not
 * be: c is bound as floats and stored one at a time); c is bound as vec4
 * rows, then `ctr`,
 * a u32 zeroed before each dispatch: workgroups take tiles (row tile
 * fastest) from it until none are left. Dispatch with
 * {@linkcode texMatmulGroups}.
 */
export const texMatmulKernel: typeof makeTexMatmulKernel = memoKernel(
  makeTexMatmulKernel,
);

/**
 * Rewrites b [N,K], held as a `tex` operand texture (`src`: texel (q, n) =
 * b[n, 4q..4q+3], K/4 wide, N rows), into the column-strip array that a
 * `tex` kernel without `transB` reads (`dst`: texel (x, k) of layer s =
 * b[4(s·W + x)..+3, k], W = {@linkcode texStripWidth}). Each invocation
 * moves one 4×4 block (four texel loads, four stores). This lets x·Wᵀ run the
 * strip kernel: fetching b's rows from the [N,K/4] texture puts the 8 lanes
 * of a vector on 8 rows of b (pages at K ≥ 1024), ~1.4× slower there.
 * src's rows are in PH phases of PR rows ({@linkcode texRowOf}).
 * Uniforms: N4 = N/4, K4 = K/4, W, PH, PR. Dispatch ⌈N4/8⌉ × ⌈K4/8⌉
 * workgroups.
 */
export const TEX_TRANSPOSE: Kernel = {
  name: "matmul_tex_transpose",
  uniforms: [
    ["N4", "u32"],
    ["K4", "u32"],
    ["W", "u32"],
    ["PH", "u32"],
    ["PR", "u32"],
  ],
  buffers: [],
  storageTextures: [["src", "2d"], ["dst", "2d-array", "write"]],
  body: `fn row(n: u32) -> i32 {
  return i32((n % p.PH) * p.PR + n / p.PH);
}
@compute @workgroup_size(8, 8) fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
) {
  let g = gid.x;
  let q = gid.y;
  if (g >= p.N4 || q >= p.K4) { return; }
  let v0 = textureLoad(src, vec2<i32>(i32(q), row(4u * g)));
  let v1 = textureLoad(src, vec2<i32>(i32(q), row(4u * g + 1u)));
  let v2 = textureLoad(src, vec2<i32>(i32(q), row(4u * g + 2u)));
  let v3 = textureLoad(src, vec2<i32>(i32(q), row(4u * g + 3u)));
  let s = i32(g / p.W);
  let x = i32(g % p.W);
  let k = i32(4u * q);
  textureStore(dst, vec2<i32>(x, k), s, vec4<f32>(v0.x, v1.x, v2.x, v3.x));
  textureStore(dst, vec2<i32>(x, k + 1), s, vec4<f32>(v0.y, v1.y, v2.y, v3.y));
  textureStore(dst, vec2<i32>(x, k + 2), s, vec4<f32>(v0.z, v1.z, v2.z, v3.z));
  textureStore(dst, vec2<i32>(x, k + 3), s, vec4<f32>(v0.w, v1.w, v2.w, v3.w));
}`,
};

/**
 * Packs rows of a row-major f32 matrix into a `tex` operand texture where a
 * buffer-to-texture copy cannot (row pitch not a multiple of 64 floats, or K
 * not of 4): texel (q, r) = src[off + r·ld + 4q..+3], zero past K, for q <
 * W, r < H. Zero texels add 0·0 products at the end of a sum of four, which
 * leaves every output's summation unchanged. With `vec4` (K, ld and off
 * multiples of 4), src is read as vec4s, one load per texel (storage loads
 * are per-lane loops on lavapipe: ~3× faster); off and ld are then in vec4s.
 * Uniforms: off, ld, K, W, H. Dispatch ⌈W/8⌉ × ⌈H/8⌉ workgroups.
 */
export function texPackRowsKernel(vec4: boolean): Kernel {
  const load = vec4
    ? `  let v = src[p.off + r * p.ld + q];`
    : `  let k = 4u * q;
  let o = p.off + r * p.ld + k;
  var v = vec4<f32>(0.0);
  if (k < p.K) { v.x = src[o]; }
  if (k + 1u < p.K) { v.y = src[o + 1u]; }
  if (k + 2u < p.K) { v.z = src[o + 2u]; }
  if (k + 3u < p.K) { v.w = src[o + 3u]; }`;
  return {
    name: `matmul_tex_pack_rows${vec4 ? "_v4" : ""}`,
    uniforms: [
      ["off", "u32"],
      ["ld", "u32"],
      ["K", "u32"],
      ["W", "u32"],
      ["H", "u32"],
    ],
    buffers: [["src", "read", vec4 ? "array<vec4<f32>>" : "array<f32>"]],
    storageTextures: [["dst", "2d", "write"]],
    body: `@compute @workgroup_size(8, 8) fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
) {
  let q = gid.x;
  let r = gid.y;
  if (q >= p.W || r >= p.H) { return; }
${load}
  textureStore(dst, vec2<i32>(i32(q), i32(r)), v);
}`,
  };
}

/**
 * Packs b [K,N] (row-major, rows `ld` apart, from element `off`) into the
 * column-strip array of a `tex` kernel without `transB` where copies cannot
 * (N not a multiple of 64, or K not of 4): texel (x, k) of layer s =
 * b[k, 4(s·W + x)..+3], zero past N and K. With `vec4` (N, ld and off
 * multiples of 4) src is read as vec4s and off and ld are in vec4s.
 * Uniforms: off, ld, K, N, W, G (texel columns to write, all strips), KP
 * (rows to write). Dispatch ⌈G/8⌉ × ⌈KP/8⌉ workgroups.
 */
export function texPackStripsKernel(vec4: boolean): Kernel {
  const load = vec4
    ? `    if (n < p.N) { v = src[p.off + k * p.ld + g]; }`
    : `    let o = p.off + k * p.ld + n;
    if (n < p.N) { v.x = src[o]; }
    if (n + 1u < p.N) { v.y = src[o + 1u]; }
    if (n + 2u < p.N) { v.z = src[o + 2u]; }
    if (n + 3u < p.N) { v.w = src[o + 3u]; }`;
  return {
    name: `matmul_tex_pack_strips${vec4 ? "_v4" : ""}`,
    uniforms: [
      ["off", "u32"],
      ["ld", "u32"],
      ["K", "u32"],
      ["N", "u32"],
      ["W", "u32"],
      ["G", "u32"],
      ["KP", "u32"],
    ],
    buffers: [["src", "read", vec4 ? "array<vec4<f32>>" : "array<f32>"]],
    storageTextures: [["dst", "2d-array", "write"]],
    body: `@compute @workgroup_size(8, 8) fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
) {
  let g = gid.x;
  let k = gid.y;
  if (g >= p.G || k >= p.KP) { return; }
  let n = 4u * g;
  var v = vec4<f32>(0.0);
  if (k < p.K) {
${load}
  }
  textureStore(dst, vec2<i32>(i32(g % p.W), i32(k)), i32(g / p.W), v);
}`,
  };
}
