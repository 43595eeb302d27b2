/**
 * Matmul tile choice per adapter: candidates from the adapter kind and device
 * limits, a short autotune (each candidate timed on batches of 512³ products,
 * x·Wᵀ: on CPU adapters that runs the same strip kernel as x·W, after a
 * rewrite of W, so it stands for both), cached in memory and in
 * `$BIOS_HOME/webgpu_autotune.json` (or `~/.cache/bios/webgpu_autotune.json`).
 *
 * @module
 */

import type { Binding, GpuContext } from "./context.ts";
import { configName, type MatmulConfig } from "./shaders/matmul.ts";

/** Largest side of a product that counts as skinny (the LoRA rank-r products). */
export const SKINNY = 64;

/** Register-tile configs for skinny products: few columns, or few rows. */
const SKINNY_N: MatmulConfig = { kind: "reg", tm: 8, tn: 4, wx: 2, wy: 32 };
const SKINNY_M: MatmulConfig = { kind: "reg", tm: 4, tn: 8, wx: 32, wy: 2 };
/**
 * Texture-fed config for skinny products on CPU adapters: 32 columns a
 * tile, so a rank-16 product keeps half of llvmpipe's 8 lanes busy (~4× the
 * storage-fed {@linkcode SKINNY_N} there). Lanes along rows (wy > 1) ran
 * 50-100× slower on lavapipe.
 */
const SKINNY_N_TEX: MatmulConfig = { kind: "tex", tm: 16, tn: 4, wx: 8, wy: 1 };

/**
 * The storage-fed tile used on CPU adapters where the texture-fed one does
 * not apply (transposed a, n not a multiple of 4, sizes past the texture
 * limits).
 */
export const CPU_FALLBACK: MatmulConfig = {
  kind: "reg",
  tm: 16,
  tn: 16,
  wx: 8,
  wy: 1,
};

/** The tile candidates for an adapter, filtered by the device limits. */
export function candidates(
  isFallback: boolean,
  limits: GPUSupportedLimits,
): MatmulConfig[] {
  const list: MatmulConfig[] = isFallback
    ? [
      // CPU adapters: no workgroup memory, operands loaded from storage
      // textures (see shaders/matmul.ts), big register tiles. lavapipe runs
      // 8 invocations as the lanes of one AVX2 vector, so every texel load
      // feeds 4·tm·tn/(tm+tn) vector multiply-adds; bigger tiles load less
      // per FMA but spill more and compile slower (16×16: ~1.3 s, 16×32:
      // ~3.5 s); 16×16 ran 5-10% faster than 16×32 at 512 and 1024 (the
      // loop body of 16×32, ~7.8k instructions, runs at a lower IPC), and
      // 8×16 within noise of 16×16.
      { kind: "tex", tm: 16, tn: 16, wx: 8, wy: 1 },
      { kind: "tex", tm: 16, tn: 32, wx: 8, wy: 1 },
    ]
    : [
      { kind: "shared", tm: 4, tn: 4, wx: 16, wy: 16, bk: 16 },
      { kind: "shared", tm: 8, tn: 8, wx: 16, wy: 16, bk: 8 },
      { kind: "shared", tm: 4, tn: 8, wx: 16, wy: 16, bk: 16 },
      { kind: "reg", tm: 4, tn: 4, wx: 16, wy: 16 },
    ];
  return list.filter((c) => {
    const threads = c.wx * c.wy;
    const shared = c.kind === "shared"
      ? (c.tm * c.wy + c.tn * c.wx) * (c.bk ?? 16) * 4
      : 0;
    return threads <= limits.maxComputeInvocationsPerWorkgroup &&
      c.wx <= limits.maxComputeWorkgroupSizeX &&
      c.wy <= limits.maxComputeWorkgroupSizeY &&
      shared <= limits.maxComputeWorkgroupStorageSize;
  });
}

/** Picks the tile config of each product. */
export class MatmulPlanner {
  /** The config of products with both sides above {@linkcode SKINNY}. */
  main: MatmulConfig;
  /** The storage-fed config used when `main` is texture-fed and cannot apply. */
  fallback: MatmulConfig;
  /**
   * Largest texture side a texture-fed product may use (the device's
   * maxTextureDimension2D); bigger operands are split into blocks.
   */
  textureLimit: number;

  /**
   * The storage-fed config for an [M,·] product that `cfg`, texture-fed,
   * cannot run (shapes the textures cannot hold, see the backend).
   */
  fallbackFor(cfg: MatmulConfig, m: number): MatmulConfig {
    if (cfg === SKINNY_N_TEX) return SKINNY_N;
    return m <= SKINNY ? SKINNY_M : this.fallback;
  }

  /** Starts with `main` (usually the first candidate, until tuned). */
  constructor(
    main: MatmulConfig,
    fallback: MatmulConfig = CPU_FALLBACK,
    textureLimit = 8192,
  ) {
    this.main = main;
    this.fallback = fallback;
    this.textureLimit = textureLimit;
  }

  /**
   * The config for an [M,N] output. With a texture-fed `main` (CPU
   * adapters), skinny products are texture-fed too (decoding's x·Wᵀ has
   * its own kernel, shaders/gemv_tex.ts).
   */
  choose(m: number, n: number): MatmulConfig {
    if (n <= SKINNY && n <= m) {
      return this.main.kind === "tex" ? SKINNY_N_TEX : SKINNY_N;
    }
    if (m <= SKINNY && this.main.kind !== "tex") return SKINNY_M;
    return this.main;
  }
}

/** Outcome of {@linkcode autotune}. */
export interface TuneResult {
  /** The fastest config. */
  best: MatmulConfig;
  /** GFLOP/s of each candidate, by {@linkcode configName}. */
  gflops: Record<string, number>;
  /** Where the choice came from. */
  source: "memory" | "file" | "timed";
}

const memory = new Map<string, MatmulConfig>();

function cacheFile(): string | null {
  try {
    const home = Deno.env.get("BIOS_HOME");
    if (home) return `${home}/webgpu_autotune.json`;
    const user = Deno.env.get("HOME");
    return user ? `${user}/.cache/bios/webgpu_autotune.json` : null;
  } catch {
    return null; // no env permission
  }
}

function readCache(file: string | null): Record<string, MatmulConfig> {
  if (!file) return {};
  try {
    return JSON.parse(Deno.readTextFileSync(file)) as Record<
      string,
      MatmulConfig
    >;
  } catch {
    return {};
  }
}

/**
 * Records `c = a bᵀ` for `size`×`size` operands with tile `cfg`, the way the
 * backend records its products (so texture-fed tiles are timed with their
 * copies).
 */
export type RecordProduct = (
  cfg: MatmulConfig,
  a: Binding,
  b: Binding,
  c: Binding,
  size: number,
) => void;

/** Products per timed batch, and batches per candidate (the fastest counts). */
const BATCH = 4, TRIES = 2;

/**
 * Times each candidate on `size`³ products (x·Wᵀ, the linear layer's form)
 * after a warm-up run that compiles it: {@linkcode TRIES} batches of
 * {@linkcode BATCH} products per sync (a sync alone costs ~11 ms in Deno,
 * as much as a 512³ product on lavapipe), the fastest batch counting; returns
 * the fastest candidate. With
 * `useCache`, a choice already made for this adapter (in memory or in the
 * cache file) is returned without timing.
 */
export async function autotune(
  ctx: GpuContext,
  cands: readonly MatmulConfig[],
  record: RecordProduct,
  opts: { size?: number; useCache?: boolean } = {},
): Promise<TuneResult> {
  const size = opts.size ?? 512;
  const key = `${ctx.adapterName}|${size}`;
  const useCache = opts.useCache ?? true;
  const file = cacheFile();
  if (useCache) {
    const hit = memory.get(key);
    if (hit) return { best: hit, gflops: {}, source: "memory" };
    const fromFile = readCache(file)[key];
    if (fromFile && cands.some((c) => configName(c) === configName(fromFile))) {
      memory.set(key, fromFile);
      return { best: fromFile, gflops: {}, source: "file" };
    }
  }
  const bytes = size * size * 4;
  const a = ctx.acquire(bytes), b = ctx.acquire(bytes), c = ctx.acquire(bytes);
  const fill = new Float32Array(size * size).map((_, i) =>
    ((i * 7919) % 97) / 97 - 0.5
  );
  ctx.write(a, fill);
  ctx.write(b, fill);
  const gflops: Record<string, number> = {};
  let best = cands[0];
  let bestTime = Infinity;
  try {
    for (const cfg of cands) {
      const run = () =>
        record(
          cfg,
          { buffer: a, bytes },
          { buffer: b, bytes },
          { buffer: c, bytes },
          size,
        );
      run();
      await ctx.sync(); // compile and warm up
      let ms = Infinity;
      for (let t = 0; t < TRIES; t++) {
        const t0 = performance.now();
        for (let i = 0; i < BATCH; i++) run();
        await ctx.sync();
        ms = Math.min(ms, (performance.now() - t0) / BATCH);
      }
      gflops[configName(cfg)] = (2 * size ** 3) / (ms * 1e6);
      if (ms < bestTime) {
        bestTime = ms;
        best = cfg;
      }
    }
  } finally {
    ctx.release(a);
    ctx.release(b);
    ctx.release(c);
  }
  memory.set(key, best);
  if (file && useCache) {
    try {
      const all = readCache(file);
      all[key] = best;
      Deno.mkdirSync(file.slice(0, file.lastIndexOf("/")), { recursive: true });
      Deno.writeTextFileSync(file, JSON.stringify(all, null, 2));
    } catch {
      // the file cache is optional (no permission, read-only home)
    }
  }
  return { best, gflops, source: "timed" };
}
