/**
 * The WebGPU backend: every {@linkcode Backend} op as WGSL compute shaders
 * through `navigator.gpu`. Tensors stay in pooled GPU buffers; ops record into
 * one command encoder that is submitted without waiting; only `read`,
 * `readInts`, `sumOfSquares` and `sync` wait.
 *
 * @module
 */

import { ropeInvFreq, ropeKey, type RopeScaling } from "../rope_freq.ts";
import { normRows } from "../norm_rows.ts";
import type {
  AdamStep,
  AttentionDims,
  Backend,
  GemmOptions,
  LinearGrads,
  LinearResult,
  LoraWeights,
  SampleOptions,
  Tensor,
} from "../backend.ts";
import {
  autotune,
  candidates,
  CPU_FALLBACK,
  MatmulPlanner,
  type TuneResult,
} from "./autotune.ts";
import {
  dims2,
  expectShape,
  fmtShape,
  gpu,
  gpuAny,
  positiveInt,
  ShapeError,
} from "./check.ts";
import { type Binding, GpuContext, type Kernel } from "./context.ts";
import { BindingLimitError } from "./errors.ts";
import { blockCols, blockRanges, type Layout, planLayout } from "./layout.ts";
import { type Block, GpuTensor, storageBytes } from "./tensor.ts";
import { HALF_FORMATS, type HalfBits } from "../half.ts";
import { WIDEN } from "./shaders/widen.ts";
import { Arena, arenaRuns, planArena } from "./packed.ts";
import { type TiledLora, tiledProduct, tileOf } from "./split.ts";
import {
  EMBEDDING_BACKWARD_BLOCK,
  EMBEDDING_BLOCK,
  LSE_BACKWARD_BLOCK,
  LSE_BLOCK_MAX,
  LSE_BLOCK_SUM,
  LSE_FINAL,
  LSE_ROW_MAX,
} from "./shaders/split.ts";
import {
  ADD,
  AXPY,
  MUL,
  SWIGLU,
  SWIGLU_BACKWARD,
  WRITE_ROWS,
} from "./shaders/elementwise.ts";
import { EMBEDDING, EMBEDDING_BACKWARD } from "./shaders/embedding.ts";
import { grid } from "./shaders/grid.ts";
import {
  LOG_SOFTMAX_GATHER,
  LOG_SOFTMAX_GATHER_BACKWARD,
} from "./shaders/loss.ts";
import {
  canVectorize,
  type MatmulConfig,
  matmulGroups,
  matmulKernel,
  type MatmulShape,
  TEX_LOOP_BUDGET,
  TEX_MIN_ROWS,
  TEX_TRANSPOSE,
  texMatmulGroups,
  texMatmulKernel,
  texPackRowsKernel,
  texPackStripsKernel,
  texStripWidth,
  texTilesPerGroup,
} from "./shaders/matmul.ts";
import {
  RMSNORM,
  RMSNORM_BACKWARD_DW,
  RMSNORM_BACKWARD_DX,
} from "./shaders/norm.ts";
import {
  adamwKernel,
  SUM_FINAL,
  SUMSQ_CHUNK,
  SUMSQ_PARTIAL,
} from "./shaders/optim.ts";
import { ROPE } from "./shaders/rope.ts";
import { SPLIT_K_REDUCE } from "./shaders/split_k.ts";
import { sampleKernel } from "./shaders/sample.ts";
import { MARK_TOKENS, REPETITION_PENALTY } from "./shaders/penalty.ts";
import {
  attentionDeltaKernel,
  attentionDkvKernel,
  attentionDqKernel,
  attentionKernel,
} from "./shaders/attention.ts";
import { GEMV_TEX_MAX_ROWS, gemvTexKernel } from "./shaders/gemv_tex.ts";
import {
  ADD_TEX,
  FLAT_TEX_WIDTH,
  RMSNORM_BACKWARD_DW_TEX,
  RMSNORM_BACKWARD_DX_TEX,
  RMSNORM_TEX,
  ROPE_TEX,
  SWIGLU_BACKWARD_TEX,
  SWIGLU_TEX,
} from "./shaders/flat_tex.ts";
import {
  attentionDkvTexKernel,
  attentionDqTexKernel,
  attentionTexKernel,
} from "./shaders/attention_tex.ts";

/** Options of {@linkcode openWebGpuBackend}. */
export interface WebGpuOptions {
  /** Time the matmul candidates at open (cached per adapter). @default {true} */
  autotune?: boolean;
  /** Adapter preference. @default {"high-performance"} */
  powerPreference?: GPUPowerPreference;
  /**
   * Split tensors whose bytes exceed this (besides the device's
   * `maxStorageBufferBindingSize` and `maxBufferSize`, which always apply).
   * For tests: a small value exercises the split paths without gigabyte
   * tensors. An integer ≥ 1024. @default {Infinity}
   */
  maxBindingBytes?: number;
  /**
   * Run the kernels chosen for real GPUs (workgroup-memory tiles,
   * storage-fed operands) even on a CPU adapter. For tests: the paths a
   * discrete GPU takes, checked on lavapipe. @default {false}
   */
  gpuKernels?: boolean;
  /**
   * Time every dispatch on the GPU (timestamp queries, one compute pass a
   * dispatch), read with `ctx.profiler.totals()`. For finding slow kernels;
   * needs the adapter's "timestamp-query" feature. @default {false}
   */
  profileKernels?: boolean;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Lanes per row of the sampling kernel on a CPU adapter: as few as keep a
 * lane's loop trips (~200 passes over its share of the vocabulary, see
 * shaders/sample.ts) within llvmpipe's per-invocation loop limit, at least
 * 8 (one SIMD vector), at most `max`. Few lanes spare the workgroup
 * barriers of every pass, which llvmpipe runs as coroutine switches: 1024
 * lanes took ~18 ms a row at a 259-token vocabulary.
 */
export function cpuSampleLanes(vocab: number, max: number): number {
  const need = Math.ceil((vocab * SAMPLE_PASSES) / TEX_LOOP_BUDGET);
  return Math.min(max, Math.max(8, 2 ** Math.ceil(Math.log2(need))));
}

/** Upper bound on the passes over a row the sampling kernel makes. */
const SAMPLE_PASSES = 256;

/**
 * Phases in which rows of `cols` floats are copied into a texture (copies
 * need 256-byte row pitches): 1 when cols is a multiple of 64, 64/gcd(cols,
 * 64) when of 4 ({@linkcode texRowOf}), else 0: packed by a kernel.
 */
function texPhases(cols: number, lim: number): number {
  if (cols % 64 === 0) return 1;
  return cols % 4 === 0 && lim >= 16 ? 64 / gcd(cols, 64) : 0;
}

/** Workgroups a split-k product aims for (about one per multiprocessor). */
const SPLIT_K_FILL = 128;
/** Fewest k a split-k slice sums. */
const SPLIT_K_MIN = 64;
/**
 * Fewest multiply-adds worth a split: below, the extra dispatch costs more
 * than the idle multiprocessors. Split without this floor, decoding's
 * [1, d]·[d, d] products added ~29 dispatches a token on the H200, and
 * batch-1 sampling fell from 123 to 99 tokens/s (measured together with the
 * periodic submits, which add ~2 a token).
 */
const SPLIT_K_MIN_MACS = 1 << 20;

/** Fewest queries a chunk of the real-GPU dk/dv kernel sums (see attentionDkvKernel). */
const DKV_CHUNK = 32;
/** Most chunks (partial dk and dv buffers) the dk/dv kernel splits into. */
const DKV_MAX_CHUNKS = 8;

/** The `tex` operand packing kernels: scalar, vec4 loads. */
const PACK_ROWS = [texPackRowsKernel(false), texPackRowsKernel(true)];
const PACK_STRIPS = [texPackStripsKernel(false), texPackStripsKernel(true)];

/** Device limits requested at their adapter maximum. */
const LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
] as const;

/** Whether an adapter is a CPU implementation (lavapipe, SwiftShader, WARP). */
export function isCpuAdapter(adapter: GPUAdapter): boolean {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const fallback = info.isFallbackAdapter ??
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean })
      .isFallbackAdapter ??
    false;
  return fallback ||
    /llvmpipe|lavapipe|swiftshader|basic render|warp/i.test(info.description);
}

/**
 * Gives the process a private XDG_RUNTIME_DIR when it has none. Mesa's Vulkan
 * loader reads it while an adapter is requested (for window-system sockets a
 * compute-only device never uses) and otherwise prints "error: XDG_RUNTIME_DIR
 * is invalid or not set in the environment." twice on stderr. A fresh 0700
 * temp dir is what the spec asks of that directory (owned by the user, mode
 * 0700). Without env or write permission it leaves things as they are.
 */
function ensureRuntimeDir(): void {
  try {
    if (Deno.env.get("XDG_RUNTIME_DIR")) return;
    // One private folder per user, reused by every process (not one per run).
    const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
    const dir = `${tmp}/bios-xdg-${Deno.uid() ?? "user"}`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if ((Deno.statSync(dir).mode ?? 0) & 0o077) Deno.chmodSync(dir, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // no permission: Mesa only prints its warning
  }
}

/**
 * Opens the first WebGPU adapter as a backend; null when there is none.
 *
 * @example
 * ```ts ignore
 * const be = await openWebGpuBackend();
 * if (be) console.log(be.device); // e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (CPU adapter)"
 * ```
 */
export async function openWebGpuBackend(
  opts: WebGpuOptions = {},
): Promise<WebGpuBackend | null> {
  checkBindingOption(opts.maxBindingBytes);
  const g = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!g) return null;
  ensureRuntimeDir();
  const adapter = await g.requestAdapter({
    powerPreference: opts.powerPreference ?? "high-performance",
  });
  if (!adapter) return null;
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS) requiredLimits[k] = adapter.limits[k];
  if (opts.profileKernels && !adapter.features.has("timestamp-query")) {
    throw new Error(
      `profileKernels needs the adapter's "timestamp-query" feature, which ${adapter.info.description} lacks`,
    );
  }
  const device = await adapter.requestDevice({
    requiredLimits,
    requiredFeatures: opts.profileKernels ? ["timestamp-query"] : [],
  });
  const cpu = isCpuAdapter(adapter) && !opts.gpuKernels;
  const name = adapter.info.description || adapter.info.vendor ||
    "unknown adapter";
  const ctx = new GpuContext(device, name, cpu, {
    profileKernels: opts.profileKernels,
  });
  const be = new WebGpuBackend(ctx, {
    maxBindingBytes: opts.maxBindingBytes,
  });
  if (opts.autotune ?? true) await be.tune();
  return be;
}

/** Elements of each block of a layout, in block order. */
function blockSizes(l: Layout): number[] {
  return blockRanges(l).map((r) => (r.r1 - r.r0) * (r.c1 - r.c0));
}

function checkBindingOption(v: number | undefined): void {
  if (v === undefined || v === Infinity) return;
  if (!Number.isInteger(v) || v < 1024) {
    throw new RangeError(
      `maxBindingBytes must be an integer ≥ 1024 (or Infinity): got ${v}`,
    );
  }
}

/** Options of one recorded matrix product. */
interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  lora?: {
    xa: Binding;
    lb: Binding;
    r: number;
    scale: number;
    layout: "t" | "n";
  };
}

interface RopeTable {
  buffer: GPUBuffer;
  rows: number;
}

/**
 * The WGSL backend (name "webgpu"). Make one with {@linkcode openWebGpuBackend}.
 *
 * Tensors larger than one storage binding ({@linkcode maxBindingBytes}: the
 * device's `maxStorageBufferBindingSize` and `maxBufferSize`, or a lower
 * test limit) are split over several buffers, cut along their longer side
 * (a table [V,C] into row blocks, logits [N,V] into column blocks; see
 * `layout.ts`). Which ops take split tensors:
 * - split: fromArray, fromInts, zeros, read, readMany, readInts, free;
 *   axpy, add, mul, sumOfSquares, adamw (block by block); gemm, linear,
 *   linearBackward (any operand or result, and the LoRA factors: a sum of
 *   products of tiles, cut at every block boundary); embedding (table and
 *   result) and embeddingBackward (result); logSoftmaxGather and its
 *   backward (logits and dlogits: per-block max, then per-block sums added in
 *   block order); sample (logits, gathered a group of whole rows at a time).
 * - refuse with a {@linkcode BindingLimitError} naming the op, the tensor
 *   and the limit: rmsNorm, rmsNormBackward, rope, attention,
 *   attentionBackward, writeRows, swiglu, swigluBackward, the ids of
 *   embedding and the dy of embeddingBackward, the [N] vectors of the loss,
 *   and sample when one row of logits alone exceeds the limit.
 * Results match the unsplit path element for element, except where a sum is
 * cut: a product whose inner dimension is split (added tile by tile), the
 * log-softmax sums (added block by block), sumOfSquares of a split tensor.
 */
export class WebGpuBackend implements Backend {
  /** "webgpu" */
  readonly name: string = "webgpu";
  /** The adapter's description. */
  readonly device: string;
  /** The recorder (device, pools, pipelines). */
  readonly ctx: GpuContext;
  /** Tile choice of each matrix product. */
  readonly planner: MatmulPlanner;
  readonly #ropeTables = new Map<string, RopeTable>();
  readonly #adamGroup: number;
  readonly #sampleLanes: number;
  /**
   * Most bytes one tensor buffer (one block of a split tensor) may hold: the
   * device's `maxStorageBufferBindingSize` and `maxBufferSize`, and the
   * `maxBindingBytes` option, whichever is least (a multiple of 4).
   */
  readonly maxBindingBytes: number;

  /** Wraps a context; prefer {@linkcode openWebGpuBackend}. */
  constructor(ctx: GpuContext, opts: { maxBindingBytes?: number } = {}) {
    checkBindingOption(opts.maxBindingBytes);
    this.ctx = ctx;
    const lim = ctx.device.limits;
    this.maxBindingBytes = Math.floor(
      Math.min(
        lim.maxStorageBufferBindingSize,
        lim.maxBufferSize,
        opts.maxBindingBytes ?? Infinity,
      ) / 4,
    ) * 4;
    ctx.maxStagingBytes = Math.min(ctx.maxStagingBytes, this.maxBindingBytes);
    this.device = `${ctx.adapterName}${ctx.isFallback ? " (CPU adapter)" : ""}`;
    this.planner = new MatmulPlanner(
      candidates(ctx.isFallback, ctx.device.limits)[0],
      CPU_FALLBACK,
      ctx.device.limits.maxTextureDimension2D,
    );
    // 4 storage bindings per tensor (p, g, m, v)
    // the sampler's lanes per row: as many as allowed, up to 1024
    const lanes = Math.min(
      1024,
      ctx.device.limits.maxComputeInvocationsPerWorkgroup,
    );
    this.#sampleLanes = 2 ** Math.floor(Math.log2(lanes));
    this.#adamGroup = Math.max(
      1,
      Math.min(
        8,
        Math.floor(ctx.device.limits.maxStorageBuffersPerShaderStage / 4),
      ),
    );
  }

  /** Runs (or recalls) the matmul autotune and adopts its choice. */
  async tune(
    opts: {
      useCache?: boolean;
      size?: number;
      cands?: readonly MatmulConfig[];
    } = {},
  ): Promise<TuneResult> {
    const r = await autotune(
      this.ctx,
      opts.cands ?? candidates(this.ctx.isFallback, this.ctx.device.limits),
      (cfg, a, b, c, size) =>
        this.#matmulWith(cfg, a, b, c, size, size, size, { transB: true }),
      opts,
    );
    this.planner.main = r.best;
    return r;
  }

  /** Releases every GPU resource; the backend must not be used again. */
  destroy(): void {
    this.ctx.destroy();
  }

  #new(shape: readonly number[], dtype: "f32" | "i32" = "f32"): GpuTensor {
    const layout = planLayout(shape, this.maxBindingBytes / 4);
    let n = 1;
    for (const d of shape) n *= d;
    if (n * 4 <= this.maxBindingBytes) {
      const buf = this.ctx.acquire(Math.max(4, n * 4));
      return new GpuTensor(buf, shape, dtype, layout, this.maxBindingBytes);
    }
    const t = new GpuTensor(
      blockSizes(layout).map((e) => this.ctx.acquire(Math.max(4, e * 4))),
      shape,
      dtype,
      layout,
      this.maxBindingBytes,
    );
    return t;
  }

  /** The blocks of `t` as bindings (the tensor itself when unsplit). */
  #bindings(t: GpuTensor): Binding[] {
    if (!t.split) return [t];
    return t.blocks().map((b) => ({ buffer: b.buffer, bytes: b.bytes }));
  }

  // ---- memory -----------------------------------------------------------------

  /** Upload f32 data (copied). */
  fromArray(data: Float32Array, shape: readonly number[]): Tensor {
    const t = this.#new(shape);
    if (data.length !== t.size) {
      this.#release(t);
      throw new ShapeError(
        "fromArray",
        `data length ${data.length} does not match shape ${fmtShape(shape)}`,
      );
    }
    this.#upload(t, data);
    return t;
  }

  /** Upload i32 data (copied). */
  fromInts(data: Int32Array, shape: readonly number[]): Tensor {
    const t = this.#new(shape, "i32");
    if (data.length !== t.size) {
      this.#release(t);
      throw new ShapeError(
        "fromInts",
        `data length ${data.length} does not match shape ${fmtShape(shape)}`,
      );
    }
    this.#upload(t, data);
    return t;
  }

  /**
   * Keep a frozen weight's 16-bit bits on the device (two a word), in the
   * blocks an f32 tensor of its shape would have; linear, linearBackward and
   * embedding widen it to f32 (exactly) for the op and free the copy after.
   */
  fromHalf(src: HalfBits, shape: readonly number[]): Tensor {
    if (!HALF_FORMATS.includes(src.format)) {
      throw new ShapeError(
        "fromHalf",
        `format must be one of ${HALF_FORMATS.join(", ")}: got ${src.format}`,
      );
    }
    const layout = planLayout(shape, this.maxBindingBytes / 4);
    const blocks = blockRanges(layout);
    const t = new GpuTensor(
      blocks.map((b) =>
        this.ctx.acquire(
          storageBytes((b.r1 - b.r0) * (b.c1 - b.c0), src.format),
        )
      ),
      shape,
      src.format,
      layout,
      this.maxBindingBytes,
    );
    if (src.bits.length !== t.size) {
      this.#release(t);
      throw new ShapeError(
        "fromHalf",
        `data length ${src.bits.length} does not match shape ${
          fmtShape(shape)
        }`,
      );
    }
    const cols = layout.cols;
    for (const b of t.blocks()) {
      const w = b.c1 - b.c0, n = (b.r1 - b.r0) * w;
      // even length, so that the block is whole u32 words
      const part = new Uint16Array(n + (n % 2));
      for (let r = b.r0; r < b.r1; r++) {
        part.set(
          src.bits.subarray(r * cols + b.c0, r * cols + b.c1),
          (r - b.r0) * w,
        );
      }
      this.ctx.write(b.buffer, part);
    }
    return t;
  }

  /**
   * `t` as f32: itself, or (16-bit) a new f32 copy widened on the device,
   * which the caller frees once its products are recorded.
   */
  #widened(
    t: Tensor,
    op: string,
    name: string,
  ): { t: GpuTensor; temp: boolean } {
    if (t instanceof GpuTensor && (t.dtype === "bf16" || t.dtype === "f16")) {
      if (t.freed) throw new ShapeError(op, `${name} was freed`);
      const out = this.#new(t.shape);
      const src = t.blocks(), dst = out.blocks();
      for (let i = 0; i < src.length; i++) {
        const n = (src[i].r1 - src[i].r0) * (src[i].c1 - src[i].c0);
        this.ctx.run(
          WIDEN,
          [{ buffer: src[i].buffer, bytes: src[i].bytes }, {
            buffer: dst[i].buffer,
            bytes: dst[i].bytes,
          }],
          [n, t.dtype === "bf16" ? 0 : 1],
          grid(n),
        );
      }
      return { t: out, temp: true };
    }
    return { t: gpuAny(t, op, name), temp: false };
  }

  /** Writes host data into every block of `t`. */
  #upload(t: GpuTensor, data: Float32Array | Int32Array): void {
    if (!t.split) {
      this.ctx.write(t.buffer, data, t.offset);
      return;
    }
    const cols = t.layout.cols;
    for (const b of t.blocks()) {
      const w = b.c1 - b.c0;
      if (w === cols) {
        this.ctx.write(b.buffer, data.subarray(b.r0 * cols, b.r1 * cols));
        continue;
      }
      const part = new (data.constructor as Float32ArrayConstructor)(
        (b.r1 - b.r0) * w,
      );
      for (let r = b.r0; r < b.r1; r++) {
        part.set(
          data.subarray(r * cols + b.c0, r * cols + b.c1),
          (r - b.r0) * w,
        );
      }
      this.ctx.write(b.buffer, part);
    }
  }

  /** A new f32 tensor of zeros. */
  zeros(shape: readonly number[]): Tensor {
    const t = this.#new(shape);
    this.#clear(t);
    return t;
  }

  /**
   * Zeroed f32 tensors as views into as few buffers (arenas) as the binding
   * limit allows, each at an offset aligned for binding; a tensor over the
   * limit alone becomes a split tensor of its own. `adamw` and
   * `sumOfSquares` given an arena's views in order sweep it in one pass.
   */
  zerosPacked(shapes: readonly (readonly number[])[]): Tensor[] {
    for (const shape of shapes) {
      for (const d of shape) {
        if (!Number.isInteger(d) || d < 0) {
          throw new ShapeError(
            "zerosPacked",
            `dimensions must be non-negative integers: got ${fmtShape(shape)}`,
          );
        }
      }
    }
    const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    // ≥ 256 bytes also keeps texture copies (16-byte texels) aligned
    const align = Math.max(
      256,
      this.ctx.device.limits.minStorageBufferOffsetAlignment,
    );
    const plan = planArena(sizes, align, this.maxBindingBytes);
    const arenas = plan.arenaBytes.map((bytes) => {
      const a = new Arena(this.ctx.acquire(bytes), bytes);
      this.ctx.clear(a.buffer, 0, bytes);
      return a;
    });
    const out = shapes.map((shape, i): GpuTensor => {
      const { arena, offset } = plan.place[i];
      if (arena < 0) return this.zeros(shape) as GpuTensor;
      const a = arenas[arena];
      return new GpuTensor(a.buffer, shape, "f32", undefined, Infinity, {
        arena: a,
        offset,
      });
    });
    arenas.forEach((a, j) =>
      a.adopt(out.filter((_, i) => plan.place[i].arena === j))
    );
    return out;
  }

  /** Overwrite an f32 tensor in place with host data of the same length. */
  write(t: Tensor, data: Float32Array): void {
    const g = gpuAny(t, "write", "t");
    if (data.length !== g.size) {
      throw new ShapeError(
        "write",
        `data length ${data.length} does not match t ${fmtShape(t.shape)}`,
      );
    }
    this.#upload(g, data);
  }

  /** Set every element of an f32 tensor to zero. */
  zero(t: Tensor): void {
    this.#clear(gpuAny(t, "zero", "t"));
  }

  /** `dst ← src` (same shapes), recorded as buffer copies. */
  copy(dst: Tensor, src: Tensor): void {
    const gd = gpuAny(dst, "copy", "dst"), gs = gpuAny(src, "copy", "src");
    expectShape("copy", "src", src, dst.shape);
    const a = gd.blocks(), b = gs.blocks();
    if (a.length !== b.length) {
      throw new ShapeError(
        "copy",
        `dst and src are split differently: ${a.length} and ${b.length} blocks`,
      );
    }
    if (gd.size === 0) return;
    a.forEach((blk, i) =>
      this.ctx.copyBuffer(
        b[i].buffer,
        b[i].offset,
        blk.buffer,
        blk.offset,
        blk.bytes,
      )
    );
  }

  #clear(t: GpuTensor): void {
    if (t.size === 0) return;
    for (const b of t.blocks()) {
      this.ctx.clear(b.buffer, b.offset, Math.ceil(b.bytes / 4) * 4);
    }
  }

  /** Copy an f32 tensor back to the host (one GPU wait). */
  async read(t: Tensor): Promise<Float32Array> {
    const g = gpuAny(t, "read", "t");
    return (await this.#readAll([g]))[0] as Float32Array;
  }

  /** Copy several f32 tensors back to the host (one GPU wait for all). */
  async readMany(ts: readonly Tensor[]): Promise<Float32Array[]> {
    const gs = ts.map((t, i) => gpuAny(t, "readMany", `ts[${i}]`));
    return (await this.#readAll(gs)) as Float32Array[];
  }

  /** Copy an i32 tensor back to the host (one GPU wait). */
  async readInts(t: Tensor): Promise<Int32Array> {
    const g = gpuAny(t, "readInts", "t", "i32");
    return (await this.#readAll([g]))[0] as Int32Array;
  }

  /** Copy i32 and f32 tensors back to the host (one GPU wait for all). */
  async readMixed(
    ints: readonly Tensor[],
    floats: readonly Tensor[],
  ): Promise<{ ints: Int32Array[]; floats: Float32Array[] }> {
    const gs = [
      ...ints.map((t, i) => gpuAny(t, "readMixed", `ints[${i}]`, "i32")),
      ...floats.map((t, i) => gpuAny(t, "readMixed", `floats[${i}]`)),
    ];
    const all = await this.#readAll(gs);
    return {
      ints: all.slice(0, ints.length) as Int32Array[],
      floats: all.slice(ints.length) as Float32Array[],
    };
  }

  /** Reads every block of every tensor with one wait, then reassembles split ones. */
  async #readAll(
    gs: readonly GpuTensor[],
  ): Promise<(Float32Array | Int32Array)[]> {
    const blocks = gs.map((g): Block[] =>
      g.split ? g.blocks() : [{
        buffer: g.buffer,
        bytes: g.size * 4,
        offset: g.offset,
        r0: 0,
        r1: g.layout.rows,
        c0: 0,
        c1: g.layout.cols,
      }]
    );
    const bufs = await this.ctx.readMany(
      blocks.flat().map((b) => ({
        buffer: b.buffer,
        bytes: b.bytes,
        offset: b.offset,
      })),
    );
    let next = 0;
    return gs.map((g, i) => {
      const Arr = g.dtype === "i32" ? Int32Array : Float32Array;
      if (!g.split) return new Arr(bufs[next++]);
      const out = new Arr(g.size);
      const cols = g.layout.cols;
      for (const b of blocks[i]) {
        const part = new Arr(bufs[next++]);
        const w = b.c1 - b.c0;
        for (let r = b.r0; r < b.r1; r++) {
          out.set(
            part.subarray((r - b.r0) * w, (r - b.r0 + 1) * w),
            r * cols + b.c0,
          );
        }
      }
      return out;
    });
  }

  /** Return a tensor's buffers to the pool. */
  free(t: Tensor): void {
    if (!(t instanceof GpuTensor)) {
      throw new ShapeError("free", "t is not a webgpu tensor");
    }
    this.#release(t);
  }

  #release(t: GpuTensor): void {
    const arena = t.arena;
    const bufs = t.detachAll();
    if (!arena) {
      for (const b of bufs) this.ctx.release(b);
    } else if (arena.drop()) {
      this.ctx.release(arena.buffer);
    }
  }

  /** Wait for all recorded work. */
  sync(): Promise<void> {
    return this.ctx.sync();
  }

  // ---- elementwise ------------------------------------------------------------

  /**
   * Runs an elementwise kernel block by block over same-shaped tensors (which
   * share one layout); the first uniform is the block's element count.
   */
  #elementwise(
    k: Kernel,
    ts: readonly GpuTensor[],
    more: readonly number[] = [],
  ): void {
    const lists = ts.map((t) => this.#bindings(t));
    lists[0].forEach((b0, i) => {
      const n = ts[0].split ? b0.bytes / 4 : ts[0].size;
      this.ctx.run(k, lists.map((l) => l[i]), [n, ...more], grid(n));
    });
  }

  /**
   * Flat textures (shaders/flat_tex.ts) holding `xs`, each copied whole, or
   * null where the storage-fed kernels run: on real GPUs, for split tensors,
   * sizes not a multiple of 4, views not 16-byte aligned, or more rows than
   * the texture limit. The caller releases them after recording its
   * dispatches.
   */
  #flatTextures(xs: readonly GpuTensor[]): GPUTexture[] | null {
    const w = FLAT_TEX_WIDTH;
    if (!this.ctx.isFallback) return null;
    for (const x of xs) {
      if (
        x.split || x.size % 4 !== 0 || x.offset % 16 !== 0 ||
        Math.ceil(x.size / (4 * w)) > this.planner.textureLimit
      ) return null;
    }
    return xs.map((x) => this.#flatTexture(x, x.size));
  }

  /** A flat texture of the first `floats` floats (a multiple of 4) of `x`. */
  #flatTexture(x: Binding, floats: number): GPUTexture {
    const w = FLAT_TEX_WIDTH, off = x.offset ?? 0;
    const t4 = floats / 4, full = Math.floor(t4 / w), tail = t4 % w;
    const t = this.ctx.acquireTexture(w, full + (tail > 0 ? 1 : 0));
    if (full > 0) this.ctx.copyToTexture(x.buffer, off, w * 16, t, w, full);
    if (tail > 0) {
      const at = off + full * w * 16;
      this.ctx.copyToTexture(x.buffer, at, w * 16, t, tail, 1, 0, full);
    }
    return t;
  }

  /** Records `k` over the flat textures `tex` (n/4 threads) into `outs`, then releases the textures. */
  #flatRun(k: Kernel, tex: GPUTexture[], outs: GpuTensor[], n: number): void {
    this.ctx.run(k, outs, [n / 4], grid(n / 4), tex);
    for (const t of tex) this.ctx.releaseTexture(t);
  }

  /** out += alpha · x. */
  axpy(out: Tensor, x: Tensor, alpha: number): void {
    const o = gpuAny(out, "axpy", "out"), xx = gpuAny(x, "axpy", "x");
    expectShape("axpy", "x", x, out.shape);
    this.#elementwise(AXPY, [o, xx], [alpha]);
  }

  /** a + b. */
  add(a: Tensor, b: Tensor): Tensor {
    const ga = gpuAny(a, "add", "a"), gb = gpuAny(b, "add", "b");
    expectShape("add", "b", b, a.shape);
    const out = this.#new(a.shape);
    const tex = this.#flatTextures([ga, gb]);
    if (tex) this.#flatRun(ADD_TEX, tex, [out], ga.size);
    else this.#elementwise(ADD, [ga, gb, out]);
    return out;
  }

  /** a ⊙ b. */
  mul(a: Tensor, b: Tensor): Tensor {
    const ga = gpuAny(a, "mul", "a"), gb = gpuAny(b, "mul", "b");
    expectShape("mul", "b", b, a.shape);
    const out = this.#new(a.shape);
    this.#elementwise(MUL, [ga, gb, out]);
    return out;
  }

  /**
   * Σ x² over all tensors (each block of a split one counts as a tensor, the
   * views of one `zerosPacked` call together as one): per-chunk partial
   * sums, then one fixed-order total.
   */
  async sumOfSquares(ts: readonly Tensor[]): Promise<number> {
    const out = this.sumOfSquaresTensor(ts);
    try {
      return (await this.read(out))[0];
    } finally {
      this.free(out);
    }
  }

  /** {@linkcode WebGpuBackend.sumOfSquares} as a [1] tensor, recorded with no wait. */
  sumOfSquaresTensor(ts: readonly Tensor[]): Tensor {
    const all = ts.map((t, i) => gpuAny(t, "sumOfSquares", `ts[${i}]`));
    // a whole arena (packed tensors, zero between them) is swept as one
    const gs = arenaRuns([all]).flatMap((run) => {
      if (run.kind === "arenas") {
        const a = run.arenas[0];
        return [{ b: { buffer: a.buffer, bytes: a.bytes }, size: a.bytes / 4 }];
      }
      const g = all[run.index];
      if (!g.split) return [{ b: g as Binding, size: g.size }];
      return this.#bindings(g).map((b) => ({ b, size: b.bytes / 4 }));
    });
    const chunks = gs.map((g) => Math.ceil(g.size / SUMSQ_CHUNK));
    const total = chunks.reduce((s, c) => s + c, 0);
    if (total === 0) return this.zeros([1]);
    const partial = this.#new([total]);
    const out = this.#new([1]);
    let offset = 0;
    gs.forEach((g, i) => {
      this.ctx.run(
        SUMSQ_PARTIAL,
        [g.b, partial],
        [g.size, offset],
        grid(chunks[i], 1),
      );
      offset += chunks[i];
    });
    this.ctx.run(SUM_FINAL, [partial, out], [total], [1]);
    this.free(partial);
    return out;
  }

  // ---- linear algebra -----------------------------------------------------------

  /** Records c = alpha · op(a) op(b) + beta · c (+ the fused LoRA term). */
  #matmul(
    a: Binding,
    b: Binding,
    c: Binding,
    m: number,
    n: number,
    k: number,
    o: MatmulOptions,
  ): void {
    if (m === 0 || n === 0) return;
    if (m <= GEMV_TEX_MAX_ROWS && this.#gemvTex(a, b, c, m, n, k, o)) return;
    this.#matmulWith(this.planner.choose(m, n), a, b, c, m, n, k, o);
  }

  /** {@linkcode #matmul} with tile `cfg` (a `tex` one falls back when it cannot apply). */
  #matmulWith(
    cfg: MatmulConfig,
    a: Binding,
    b: Binding,
    c: Binding,
    m: number,
    n: number,
    k: number,
    o: MatmulOptions,
  ): void {
    if (cfg.kind === "tex") {
      if (this.#texMatmul(cfg, a, b, c, m, n, k, o)) return;
      cfg = this.planner.fallbackFor(cfg, m);
    }
    const transA = o.transA ?? false, transB = o.transB ?? false;
    const shape: MatmulShape = {
      transA,
      transB,
      vec: canVectorize(m, n, k, transA, transB),
      lora: o.lora ? o.lora.layout : "",
    };
    const groups = matmulGroups(cfg, m, n);
    const ks = this.#splitK(cfg, shape, k, groups, m, n);
    if (ks > 0) {
      // Partials over k slices in a scratch buffer, then summed in order.
      const slices = Math.ceil(k / ks);
      const bytes = slices * m * n * 4;
      const part = this.ctx.acquire(bytes);
      this.ctx.run(
        matmulKernel(cfg, { ...shape, splitK: true }),
        [a, b, { buffer: part, bytes }],
        [m, n, k, 0, 1, 0, 0, ks],
        [groups[0], groups[1], slices],
      );
      this.ctx.run(
        SPLIT_K_REDUCE,
        [{ buffer: part, bytes }, c],
        [m * n, slices, o.alpha ?? 1, o.beta ?? 0],
        grid(m * n),
      );
      this.ctx.release(part);
      return;
    }
    const bindings: Binding[] = [a, b, c];
    if (o.lora) bindings.push(o.lora.xa, o.lora.lb);
    this.ctx.run(
      matmulKernel(cfg, shape),
      bindings,
      [m, n, k, o.lora?.r ?? 0, o.alpha ?? 1, o.beta ?? 0, o.lora?.scale ?? 0],
      groups,
    );
  }

  /**
   * The k slice of a split-k product, or 0 for none. On a real GPU a product
   * with a small output and a long reduction, like a LoRA weight gradient
   * (aᵀ·b: [r, d] summed over every token), fills a few workgroups of its
   * 132 or so multiprocessors; slices of k in workgroup z fill more (on the
   * H200, 2-workgroup aᵀ·b products of k 1024 took ~0.2 ms each, a third
   * of a step's GPU time), as do x·Aᵀ's [tokens, r] outputs. Reg tiles
   * without a LoRA term only. CPU adapters run their own tiles (they have
   * no idle cores to fill).
   */
  #splitK(
    cfg: MatmulConfig,
    shape: MatmulShape,
    k: number,
    groups: readonly [number, number],
    m: number,
    n: number,
  ): number {
    const wgs = groups[0] * groups[1];
    if (
      this.ctx.isFallback || cfg.kind !== "reg" || shape.lora ||
      k < 2 * SPLIT_K_MIN || wgs >= SPLIT_K_FILL ||
      m * n * k < SPLIT_K_MIN_MACS
    ) return 0;
    const slices = Math.min(
      Math.ceil(SPLIT_K_FILL / wgs),
      Math.floor(k / SPLIT_K_MIN),
      // the partials are one binding
      Math.floor(this.maxBindingBytes / (m * n * 4)),
    );
    return slices < 2 ? 0 : Math.ceil(k / slices / 4) * 4;
  }

  /**
   * The texture-fed product (CPU adapters): copies a, and b, into textures in
   * blocks of at most the texture size limit and records one dispatch per
   * block of c. b goes into the column-strip array of the kernel without
   * `transB`: copied when b is [K,N], rewritten by {@linkcode TEX_TRANSPOSE}
   * from a row texture when b is [N,K] (only past the texture limit, k >
   * limit, does x·Wᵀ run the `transB` kernel on the row texture). Where a
   * copy cannot (texture copies need 256-byte row pitches: k, or n when b is
   * [K,N], not a multiple of 64), {@linkcode TEX_PACK_ROWS} and
   * {@linkcode TEX_PACK_STRIPS} write the textures instead, k padded with
   * zero texels to a multiple of 4. False (nothing recorded) when the shape
   * does not fit: a transposed, n not a multiple of 4, or k/4 past the limit.
   */
  #texMatmul(
    cfg: MatmulConfig,
    a: Binding,
    b: Binding,
    c: Binding,
    m: number,
    n: number,
    k: number,
    o: MatmulOptions,
  ): boolean {
    const transB = o.transB ?? false, transA = o.transA ?? false;
    const lim = this.planner.textureLimit;
    // k padded to whole texels (zero products past k change no sum)
    const k4 = Math.ceil(k / 4), kp = 4 * k4;
    // n not a multiple of 4 (a vocabulary-wide x·Wᵀ): c stored a float at a
    // time; b [K,N] must be whole texels
    const scalarC = n % 4 !== 0;
    if (k === 0 || k4 > lim || (scalarC && !transB)) return false;
    if (m <= TEX_MIN_ROWS && (o.beta ?? 0) !== 0) return false;
    if (!transB && kp > lim) return false;
    // aᵀ (a stored [K,M]) is copied as rows and transposed whole: m and k
    // multiples of 4, one block of rows
    if (transA && (m % 4 !== 0 || k % 4 !== 0 || m > lim || k > lim)) {
      return false;
    }
    const ph = texPhases(k, lim);
    // the kernel reads b as [N,K] rows only where strips cannot hold k
    const rowsB = transB && kp > lim;
    const lora: Binding[] = o.lora ? [o.lora.xa, o.lora.lb] : [];
    // b goes into a texture array of column strips (see texMatmulKernel)
    const strip = texStripWidth(cfg);
    // columns of c per block: rows of the b texture, or whole strips, as
    // many as fit both the texture size limit and the array layer limit
    // (and, for x·Wᵀ, the rows of the texture the strips are rewritten from)
    const layerCap = Math.min(
      Math.max(1, Math.floor(lim / strip)),
      this.ctx.device.limits.maxTextureArrayLayers,
    );
    const nStep = rowsB
      ? lim
      : transB
      ? Math.min(lim, 4 * strip * layerCap)
      : 4 * strip * layerCap;
    // blocks of rows hold whole phases
    const step = (s: number) => ph > 1 ? s - (s % 16) : s;
    // strips (see texMatmulKernel) of columns [col0, col0 + nc) of an
    // operand [kk, N] with N = n, stored [N, kk] when `rows` (rewritten from
    // its row texture by TEX_TRANSPOSE), else copied or packed
    const strips = (
      x: Binding,
      rows: boolean,
      kk: number,
      col0: number,
      nc: number,
    ): GPUTexture => {
      const kk4 = Math.ceil(kk / 4), kkp = 4 * kk4;
      // rows past n (nc not a multiple of 4) feed columns never stored
      const nc4 = Math.ceil(nc / 4), layers = Math.ceil(nc4 / strip);
      const t = this.ctx.acquireTexture(strip, kkp, layers);
      if (rows) {
        const [rt, ph, pr] = this.#rowsTexture(x, col0, nc, kk, true);
        this.ctx.run(
          TEX_TRANSPOSE,
          [],
          [nc4, kk4, strip, ph, pr],
          [Math.ceil(nc4 / 8), Math.ceil(kk4 / 8)],
          [rt, t],
        );
        this.ctx.releaseTexture(rt);
      } else if (n % 64 === 0 && kk === kkp) {
        for (let s = 0; s < layers; s++) {
          const at = (x.offset ?? 0) + (col0 + 4 * s * strip) * 4;
          const w = Math.min(strip, nc4 - s * strip);
          this.ctx.copyToTexture(x.buffer, at, n * 4, t, w, kk, s);
        }
      } else {
        const [src, off] = this.#packSource(x, col0, (kk - 1) * n + nc);
        const g = layers * strip;
        // n is a multiple of 4 here
        const v = off % 4 === 0, d = v ? 4 : 1;
        this.ctx.run(
          PACK_STRIPS[v ? 1 : 0],
          [src],
          [off / d, n / d, kk, nc, strip, g, kkp],
          [Math.ceil(g / 8), Math.ceil(kkp / 8)],
          [t],
        );
      }
      return t;
    };
    // the LoRA term runs as R more k on textures when R is whole texels
    // (see texMatmulKernel's loraTex)
    const lt = !!o.lora && !rowsB && o.lora.r % 4 === 0 &&
      (o.lora.xa.offset ?? 0) % 16 === 0 && (o.lora.lb.offset ?? 0) % 16 === 0;
    const mStep = step(lim);
    const ncStep = transB && !rowsB ? step(nStep) : nStep;
    for (let row0 = 0; row0 < m; row0 += mStep) {
      const mc = Math.min(mStep, m - row0);
      const filledA = transA
        ? this.#cachedTexture(a, `aT|${m}|${k}`, () => ({
          tex: this.#transposedRows(a, k, m),
          extra: [1, m],
        }))
        : this.#cachedRows(a, row0, mc, k);
      const ta = filledA.tex, [aph, apr] = filledA.extra;
      const kernel = this.#texKernel(
        cfg,
        rowsB,
        o.lora?.layout ?? "",
        aph > 1,
        (o.beta ?? 0) !== 0,
        lt,
        scalarC,
      );
      for (let col0 = 0; col0 < n; col0 += ncStep) {
        const nc = Math.min(ncStep, n - col0);
        const bKey = `b|${transB}|${col0}|${nc}|${k}|${n}|${strip}`;
        const tb = this.#cachedTexture(b, bKey, () => ({
          // the transB kernel reads rows in the plain layout
          tex: rowsB
            ? this.#rowsTexture(b, col0, nc, k, false)[0]
            : strips(b, transB, k, col0, nc),
          extra: [],
        })).tex;
        // the LoRA term's operands: xa's rows, lbᵀ's strips
        const loraTex: GPUTexture[] = [];
        let xph = 1, xpr = 1;
        if (lt) {
          const { xa, lb, r, layout } = o.lora!;
          const fx = this.#cachedRows(xa, row0, mc, r);
          [xph, xpr] = fx.extra;
          const lKey = `l|${layout}|${col0}|${nc}|${n}|${r}|${strip}`;
          loraTex.push(
            fx.tex,
            this.#cachedTexture(lb, lKey, () => ({
              tex: strips(lb, layout === "t", r, col0, nc),
              extra: [],
            })).tex,
          );
        }
        // the kernel's workgroups take tiles from this counter, zeroed, at
        // most tmax each (llvmpipe's loop limit)
        const tmax = texTilesPerGroup(kp / 4, o.lora?.r ?? 0);
        const ctr = this.ctx.acquire(4);
        this.ctx.clear(ctr, 0, 4);
        this.ctx.run(
          kernel,
          [c, { buffer: ctr, bytes: 4 }, ...(lt ? [] : lora)],
          [
            mc,
            nc,
            kp,
            o.lora?.r ?? 0,
            o.alpha ?? 1,
            o.beta ?? 0,
            o.lora?.scale ?? 0,
            n,
            row0,
            col0,
            aph,
            apr,
            tmax,
            xph,
            xpr,
          ],
          texMatmulGroups(cfg, mc, nc, tmax),
          [ta, tb, ...loraTex],
        );
        this.ctx.release(ctr);
      }
    }
    // every use of this product's textures is recorded
    this.ctx.textureCache.settle();
    return true;
  }

  /**
   * Few-row x·Wᵀ on CPU adapters (decoding; shaders/gemv_tex.ts): x's rows,
   * W's rows (laid out once while W is unchanged) and the LoRA term's xa
   * and B rows in textures, a thread per column. False (nothing recorded)
   * on real GPUs, for other forms (aᵀ, b [K,N], beta ≠ 0, the LoRA term of
   * dx), k or the rank not a multiple of 4, or sides past the texture limit.
   */
  #gemvTex(
    a: Binding,
    b: Binding,
    c: Binding,
    m: number,
    n: number,
    k: number,
    o: MatmulOptions,
  ): boolean {
    const lim = this.planner.textureLimit;
    const lora = o.lora;
    // texture copies start at whole texels
    const aligned = (x: Binding) => (x.offset ?? 0) % 16 === 0;
    if (
      !this.ctx.isFallback || o.transA || !o.transB || (o.beta ?? 0) !== 0 ||
      k % 4 !== 0 || k / 4 > lim || n > lim || m > lim || !aligned(a) ||
      !aligned(b) ||
      (lora && (lora.layout !== "t" || lora.r % 4 !== 0 || lora.r / 4 > lim ||
        !aligned(lora.xa) || !aligned(lora.lb)))
    ) {
      return false;
    }
    // x's and xa's textures are the texture-fed product's too
    const tx = this.#cachedRows(a, 0, m, k);
    const tw = this.#cachedRows(b, 0, n, k);
    const textures = [tx.tex, tw.tex];
    let phases = [1, 1];
    if (lora) {
      const r = lora.r;
      const txa = this.#cachedRows(lora.xa, 0, m, r);
      const tlb = this.#cachedRows(lora.lb, 0, n, r);
      textures.push(txa.tex, tlb.tex);
      phases = [...txa.extra, ...tlb.extra];
    }
    this.ctx.run(
      gemvTexKernel(m, !!lora),
      [c],
      [
        n,
        k / 4,
        (lora?.r ?? 0) / 4,
        o.alpha ?? 1,
        lora?.scale ?? 0,
        n,
        0,
        ...tx.extra,
        ...tw.extra,
        ...phases,
      ],
      grid(n),
      textures,
    );
    this.ctx.textureCache.settle();
    return true;
  }

  /**
   * {@linkcode #rowsTexture} (phased) through the operand texture cache:
   * laid out again only when x's buffer has been written since; `extra`
   * holds its phases and rows per phase.
   */
  #cachedRows(
    x: Binding,
    r0: number,
    rows: number,
    cols: number,
  ): { tex: GPUTexture; extra: number[] } {
    return this.#cachedTexture(x, `rows|${r0}|${rows}|${cols}`, () => {
      const [tex, ph, pr] = this.#rowsTexture(x, r0, rows, cols, true);
      return { tex, extra: [ph, pr] };
    });
  }

  /**
   * A texture of rows [r0, r0 + rows) of the row-major [?, cols] operand `x`
   * (texel (q, r) holds x[r0 + r, 4q..4q+3]), with its phases and rows per
   * phase ({@linkcode texRowOf}): copied in one go when cols is a multiple
   * of 64, in phases when of 4 and `phased`, else written by
   * {@linkcode TEX_PACK_ROWS} (zero-padded to whole texels, 1 phase).
   */
  #rowsTexture(
    x: Binding,
    r0: number,
    rows: number,
    cols: number,
    phased: boolean,
  ): [GPUTexture, number, number] {
    const cph = texPhases(cols, this.planner.textureLimit);
    const c4 = Math.ceil(cols / 4);
    const p = phased || cph === 1 ? cph : 0;
    if (p === 0) {
      const t = this.ctx.acquireTexture(c4, rows);
      const [src, off] = this.#packSource(x, r0 * cols, rows * cols);
      const v = cols % 4 === 0 && off % 4 === 0, d = v ? 4 : 1;
      this.ctx.run(
        PACK_ROWS[v ? 1 : 0],
        [src],
        [off / d, cols / d, cols, c4, rows],
        [Math.ceil(c4 / 8), Math.ceil(rows / 8)],
        [t],
      );
      return [t, 1, rows];
    }
    const pr = Math.ceil(rows / p);
    const t = this.ctx.acquireTexture(c4, p * pr);
    for (let j = 0; j < p && j < rows; j++) {
      const at = (x.offset ?? 0) + (r0 + j) * cols * 4;
      const h = Math.ceil((rows - j) / p);
      this.ctx.copyToTexture(x.buffer, at, p * cols * 4, t, c4, h, 0, j * pr);
    }
    return [t, p, pr];
  }

  /**
   * The `tex` operand texture of aᵀ for a stored [K,M] (row-major, K and M
   * multiples of 4, both within the texture limit): texel (q, m) holds
   * a[4q..4q+3, m]. a's rows are copied into a [M/4, K] texture (in phases
   * when M is not a multiple of 64, see {@linkcode texRowOf}) and
   * {@linkcode TEX_TRANSPOSE} moves its 4×4 blocks into a [K/4, M] one. The
   * weight gradients of a LoRA step (dyᵀ·xa, (dy B)ᵀ·x) take this path.
   */
  #transposedRows(a: Binding, k: number, m: number): GPUTexture {
    const m4 = m / 4, k4 = k / 4;
    const [rows, ph, pr] = this.#rowsTexture(a, 0, k, m, true);
    const t = this.ctx.acquireTexture(k4, m, 1);
    this.ctx.run(
      TEX_TRANSPOSE,
      [],
      [k4, m4, k4, ph, pr],
      [Math.ceil(k4 / 8), Math.ceil(m4 / 8)],
      [rows, t],
    );
    this.ctx.releaseTexture(rows);
    return t;
  }

  /**
   * The texture `make` records from operand `x`, or the one it recorded
   * before when x's buffer has not been written since (`key` names the rest
   * of what the texture depends on). The cache owns it: never released here.
   */
  #cachedTexture(
    x: Binding,
    key: string,
    make: () => { tex: GPUTexture; extra: number[] },
  ): { tex: GPUTexture; extra: number[] } {
    const id = this.ctx.bufferId(x.buffer);
    return this.ctx.textureCache.get(
      `${id}|${x.offset ?? 0}|${key}`,
      x.buffer,
      this.ctx.generation(x.buffer),
      make,
    );
  }

  /** The `tex` kernel of this tile and form (built once: texMatmulKernel is memoized). */
  #texKernel(
    cfg: MatmulConfig,
    transB: boolean,
    lora: "" | "t" | "n",
    phased: boolean,
    accumulate: boolean,
    loraTex: boolean,
    scalarC: boolean,
  ): Kernel {
    return texMatmulKernel(cfg, {
      transB,
      lora,
      phased,
      accumulate,
      loraTex,
      scalarC,
    });
  }

  /**
   * A storage binding of `x` covering `span` floats from float `elem` of it,
   * starting at an offset the device can bind, and where `elem` lies in it
   * (in floats): the source of a texture packing kernel.
   */
  #packSource(x: Binding, elem: number, span: number): [Binding, number] {
    const align = this.ctx.device.limits.minStorageBufferOffsetAlignment;
    const byte = (x.offset ?? 0) + elem * 4;
    const at = byte - (byte % align);
    return [
      { buffer: x.buffer, bytes: byte - at + span * 4, offset: at },
      (byte - at) / 4,
    ];
  }

  /**
   * Records c = alpha · op(a) op(b) + beta · c (+ the LoRA term) on tensors:
   * the plain product when nothing is split, else the tiled one.
   */
  #product(
    a: GpuTensor,
    b: GpuTensor,
    c: GpuTensor,
    m: number,
    n: number,
    k: number,
    o: {
      transA?: boolean;
      transB?: boolean;
      alpha?: number;
      beta?: number;
      lora?: TiledLora;
    },
  ): void {
    const split = a.split || b.split || c.split || o.lora?.xa.split ||
      o.lora?.lb.split;
    if (!split) {
      this.#matmul(a, b, c, m, n, k, o);
      return;
    }
    tiledProduct(
      this.ctx,
      (ta, tb, tc, mm, nn, kk, oo) => this.#matmul(ta, tb, tc, mm, nn, kk, oo),
      a,
      b,
      c,
      m,
      n,
      k,
      {
        transA: o.transA ?? false,
        transB: o.transB ?? false,
        alpha: o.alpha ?? 1,
        beta: o.beta ?? 0,
        lora: o.lora,
      },
    );
  }

  /** out = alpha · op(a) op(b) + beta · out. */
  gemm(a: Tensor, b: Tensor, opts: GemmOptions = {}): Tensor {
    const op = "gemm";
    const [ar, ac] = dims2(a, op, "a");
    const [br, bc] = dims2(b, op, "b");
    const transA = opts.transA ?? false, transB = opts.transB ?? false;
    const [m, k] = transA ? [ac, ar] : [ar, ac];
    const [k2, n] = transB ? [bc, br] : [br, bc];
    if (k !== k2) {
      throw new ShapeError(
        op,
        `inner dimensions differ: op(a) is [${m},${k}] (a ${
          fmtShape(a.shape)
        }, transA ${transA}), ` +
          `op(b) is [${k2},${n}] (b ${fmtShape(b.shape)}, transB ${transB})`,
      );
    }
    const ga = gpuAny(a, op, "a"), gb = gpuAny(b, op, "b");
    let out: GpuTensor;
    let beta = 0;
    if (opts.out !== undefined) {
      out = gpuAny(opts.out, op, "out");
      expectShape(op, "out", out, [m, n]);
      beta = opts.beta ?? 0;
    } else {
      out = this.#new([m, n]);
    }
    this.#product(ga, gb, out, m, n, k, {
      transA,
      transB,
      alpha: opts.alpha ?? 1,
      beta,
    });
    return out;
  }

  #checkLinear(op: string, x: Tensor, w: Tensor, lora?: LoraWeights) {
    const [n, inF] = dims2(x, op, "x");
    const [outF, wIn] = dims2(w, op, "w");
    if (wIn !== inF) {
      throw new ShapeError(
        op,
        `x ${fmtShape(x.shape)} and w ${
          fmtShape(w.shape)
        } differ in the input width`,
      );
    }
    if (!lora) return { n, inF, outF, rank: 0 };
    const [rank, aIn] = dims2(lora.a, op, "lora.a");
    if (aIn !== inF) {
      throw new ShapeError(
        op,
        `lora.a must be [R, ${inF}]: got ${fmtShape(lora.a.shape)}`,
      );
    }
    expectShape(op, "lora.b", lora.b, [outF, rank]);
    return { n, inF, outF, rank };
  }

  /** y = x Wᵀ + scale · (x Aᵀ) Bᵀ, the LoRA product fused into the epilogue. */
  linear(x: Tensor, w: Tensor, lora?: LoraWeights): LinearResult {
    const op = "linear";
    const { n, inF, outF, rank } = this.#checkLinear(op, x, w, lora);
    const gx = gpuAny(x, op, "x");
    const { t: gw, temp } = this.#widened(w, op, "w");
    const y = this.#new([n, outF]);
    if (!lora) {
      this.#product(gx, gw, y, n, outF, inF, { transB: true });
      if (temp) this.free(gw);
      return { y };
    }
    const la = gpuAny(lora.a, op, "lora.a"), lb = gpuAny(lora.b, op, "lora.b");
    const xa = this.#new([n, rank]);
    this.#product(gx, la, xa, n, rank, inF, { transB: true });
    this.#product(gx, gw, y, n, outF, inF, {
      transB: true,
      lora: { xa, lb, r: rank, scale: lora.scale, layout: "t" },
    });
    if (temp) this.free(gw);
    return { y, xa };
  }

  /** dx = dy W + scale · (dy B) A; dA = scale · (dy B)ᵀ x; dB = scale · dyᵀ (x Aᵀ). */
  linearBackward(
    dy: Tensor,
    x: Tensor,
    w: Tensor,
    lora?: LoraWeights,
    xa?: Tensor,
  ): LinearGrads {
    const op = "linearBackward";
    const { n, inF, outF, rank } = this.#checkLinear(op, x, w, lora);
    expectShape(op, "dy", dy, [n, outF]);
    const gdy = gpuAny(dy, op, "dy"), gx = gpuAny(x, op, "x");
    const { t: gw, temp } = this.#widened(w, op, "w");
    const dx = this.#new([n, inF]);
    if (!lora) {
      this.#product(gdy, gw, dx, n, inF, outF, {});
      if (temp) this.free(gw);
      return { dx };
    }
    const la = gpuAny(lora.a, op, "lora.a"), lb = gpuAny(lora.b, op, "lora.b");
    // dyb = dy B [n, R]
    const dyb = this.#new([n, rank]);
    this.#product(gdy, lb, dyb, n, rank, outF, {});
    this.#product(gdy, gw, dx, n, inF, outF, {
      lora: { xa: dyb, lb: la, r: rank, scale: lora.scale, layout: "n" },
    });
    if (temp) this.free(gw);
    const da = this.#new([rank, inF]);
    this.#product(dyb, gx, da, rank, inF, n, {
      transA: true,
      alpha: lora.scale,
    });
    let gxa: GpuTensor;
    let own = false;
    if (xa) {
      gxa = gpuAny(xa, op, "xa");
      expectShape(op, "xa", xa, [n, rank]);
    } else {
      gxa = this.#new([n, rank]);
      own = true;
      this.#product(gx, la, gxa, n, rank, inF, { transB: true });
    }
    const db = this.#new([outF, rank]);
    this.#product(gdy, gxa, db, outF, rank, n, {
      transA: true,
      alpha: lora.scale,
    });
    this.free(dyb);
    if (own) this.free(gxa);
    return { dx, da, db };
  }

  // ---- layers -------------------------------------------------------------------

  /** RMSNorm over rows of x [N,C]. */
  rmsNorm(x: Tensor, w: Tensor, eps: number): { y: Tensor; rstd: Tensor } {
    const op = "rmsNorm";
    const [n0, c0] = dims2(x, op, "x");
    // Per-group norms read the same data as rows of the group's width.
    const { rows: n, width: c } = normRows(op, n0, c0, w.shape);
    const gx = gpu(x, op, "x"), gw = gpu(w, op, "w");
    const y = this.#new([n0, c0]), rstd = this.#new([n]);
    const tex = this.#rowLoopsFit(n, c) ? this.#flatTextures([gx, gw]) : null;
    if (tex) {
      this.ctx.run(RMSNORM_TEX, [y, rstd], [n, c, eps], grid(n), tex);
      for (const t of tex) this.ctx.releaseTexture(t);
      return { y, rstd };
    }
    this.ctx.run(RMSNORM, [gx, gw, y, rstd], [n, c, eps], grid(n, 1));
    return { y, rstd };
  }

  /**
   * Whether the texture-fed RMSNorm kernels' loops (2·C/4 trips a row
   * thread, N/4 a column thread) stay within llvmpipe's per-invocation loop
   * limit, with C (and N, for rstd's texels) multiples of 4.
   */
  #rowLoopsFit(n: number, c: number): boolean {
    return c % 4 === 0 && n % 4 === 0 && c / 2 < TEX_LOOP_BUDGET &&
      n / 4 < TEX_LOOP_BUDGET;
  }

  /** Backward of rmsNorm: dx [N,C], dw [C]. */
  rmsNormBackward(
    dy: Tensor,
    x: Tensor,
    w: Tensor,
    rstd: Tensor,
  ): { dx: Tensor; dw: Tensor };
  /** RMSNorm backward of a frozen norm: dx alone. */
  rmsNormBackward(
    dy: Tensor,
    x: Tensor,
    w: Tensor,
    rstd: Tensor,
    opts: { weightGrad: false },
  ): { dx: Tensor; dw: null };
  rmsNormBackward(
    dy: Tensor,
    x: Tensor,
    w: Tensor,
    rstd: Tensor,
    opts: { weightGrad?: boolean } = {},
  ): { dx: Tensor; dw: Tensor | null } {
    const op = "rmsNormBackward";
    const [n0, c0] = dims2(x, op, "x");
    expectShape(op, "dy", dy, [n0, c0]);
    const { rows: n, width: c } = normRows(op, n0, c0, w.shape);
    expectShape(op, "rstd", rstd, [n]);
    const gdy = gpu(dy, op, "dy"), gx = gpu(x, op, "x"), gw = gpu(w, op, "w");
    const gr = gpu(rstd, op, "rstd");
    const dx = this.#new([n0, c0]);
    // dw sums every row of a column: skipped for a frozen norm.
    const dw = opts.weightGrad === false ? null : this.#new([c]);
    const tex = this.#rowLoopsFit(n, c)
      ? this.#flatTextures([gdy, gx, gw])
      : null;
    const trs = tex ? this.#flatTextures([gr]) : null;
    if (tex && trs) {
      this.ctx.run(RMSNORM_BACKWARD_DX_TEX, [gr, dx], [n, c], grid(n), tex);
      if (dw) {
        this.ctx.run(
          RMSNORM_BACKWARD_DW_TEX,
          [dw],
          [n, c],
          grid(c / 4),
          [tex[0], tex[1], trs[0]],
        );
      }
      for (const t of [...tex, ...trs]) this.ctx.releaseTexture(t);
      return { dx, dw };
    }
    for (const t of [...(tex ?? []), ...(trs ?? [])]) {
      this.ctx.releaseTexture(t);
    }
    this.ctx.run(
      RMSNORM_BACKWARD_DX,
      [gdy, gx, gw, gr, dx],
      [n, c],
      grid(n, 1),
    );
    if (dw) {
      this.ctx.run(RMSNORM_BACKWARD_DW, [gdy, gx, gr, dw], [n, c], grid(c));
    }
    return { dx, dw };
  }

  /** cos/sin table covering positions below `need`, computed as the CPU reference does. */
  #ropeTable(
    headDim: number,
    theta: number,
    need: number,
    scaling?: RopeScaling,
  ): RopeTable {
    const key = ropeKey(headDim, theta, scaling);
    const have = this.#ropeTables.get(key);
    if (have && have.rows >= need) return have;
    let rows = 512;
    while (rows < need) rows *= 2;
    const half = headDim / 2;
    const f32 = Math.fround;
    const invFreq = ropeInvFreq(headDim, theta, scaling);
    const data = new Float32Array(2 * rows * half);
    for (let pos = 0; pos < rows; pos++) {
      for (let i = 0; i < half; i++) {
        const angle = f32(pos * invFreq[i]);
        data[pos * half + i] = Math.cos(angle);
        data[(rows + pos) * half + i] = Math.sin(angle);
      }
    }
    const buffer = this.ctx.acquire(data.byteLength);
    this.ctx.write(buffer, data);
    if (have) this.ctx.release(have.buffer);
    const t = { buffer, rows };
    this.#ropeTables.set(key, t);
    return t;
  }

  /** Rotary embedding (rotate-half); `inverse` is the backward. */
  rope(
    x: Tensor,
    dims: {
      seqLen: number;
      heads: number;
      headDim: number;
      offset: number;
      theta: number;
      scaling?: RopeScaling;
    },
    inverse = false,
  ): Tensor {
    const op = "rope";
    const [rows, width] = dims2(x, op, "x");
    positiveInt(op, "seqLen", dims.seqLen);
    positiveInt(op, "heads", dims.heads);
    positiveInt(op, "headDim", dims.headDim);
    if (dims.headDim % 2 !== 0) {
      throw new ShapeError(op, `headDim must be even: got ${dims.headDim}`);
    }
    if (!Number.isInteger(dims.offset) || dims.offset < 0) {
      throw new ShapeError(
        op,
        `offset must be a non-negative integer: got ${dims.offset}`,
      );
    }
    if (width !== dims.heads * dims.headDim || rows % dims.seqLen !== 0) {
      throw new ShapeError(
        op,
        `x ${
          fmtShape(x.shape)
        } is not [B·${dims.seqLen}, ${dims.heads}·${dims.headDim}]`,
      );
    }
    const gx = gpu(x, op, "x");
    const table = this.#ropeTable(
      dims.headDim,
      dims.theta,
      dims.offset + dims.seqLen,
      dims.scaling,
    );
    const half = dims.headDim / 2;
    const y = this.#new(x.shape);
    const total = rows * dims.heads * half;
    const tex = half % 4 === 0 ? this.#flatTextures([gx]) : null;
    if (tex) {
      // the table's texture is laid out once while the table is unchanged
      const tb = { buffer: table.buffer, bytes: table.rows * half * 8 };
      const tt = this.#cachedTexture(tb, `rope|${table.rows}|${half}`, () => ({
        tex: this.#flatTexture(tb, table.rows * half * 2),
        extra: [],
      })).tex;
      this.ctx.run(
        ROPE_TEX,
        [y],
        [
          total / 4,
          half / 4,
          dims.heads,
          dims.seqLen,
          dims.offset,
          table.rows,
          inverse ? -1 : 1,
        ],
        grid(total / 4),
        [tex[0], tt],
      );
      this.ctx.releaseTexture(tex[0]);
      this.ctx.textureCache.settle();
      return y;
    }
    this.ctx.run(
      ROPE,
      [gx, { buffer: table.buffer, bytes: table.rows * half * 8 }, y],
      [
        total,
        half,
        dims.heads,
        dims.seqLen,
        dims.offset,
        table.rows,
        inverse ? -1 : 1,
      ],
      grid(total),
    );
    return y;
  }

  #checkAttention(
    op: string,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    dims: AttentionDims,
  ) {
    const kvRows = dims.kvRows ?? dims.tk;
    for (
      const key of ["batch", "tq", "tk", "heads", "kvHeads", "headDim"] as const
    ) {
      positiveInt(op, key, dims[key]);
    }
    positiveInt(op, "kvRows", kvRows);
    const { batch, tq, tk, heads, kvHeads, headDim } = dims;
    if (heads % kvHeads !== 0) {
      throw new ShapeError(
        op,
        `heads (${heads}) must be a multiple of kvHeads (${kvHeads})`,
      );
    }
    if (tk < tq || kvRows < tk) {
      throw new ShapeError(
        op,
        `need tq ≤ tk ≤ kvRows: got tq ${tq}, tk ${tk}, kvRows ${kvRows}`,
      );
    }
    expectShape(op, "q", q, [batch * tq, heads * headDim]);
    expectShape(op, "k", k, [batch * kvRows, kvHeads * headDim]);
    expectShape(op, "v", v, [batch * kvRows, kvHeads * headDim]);
    return {
      u: [batch, tq, tk, kvRows, heads, kvHeads, 1 / Math.sqrt(headDim)],
      kvRows,
    };
  }

  /**
   * The textures of the texture-fed attention kernels
   * (shaders/attention_tex.ts) holding `xs` (q, k, v, then dout if given),
   * each copied whole, or null where the storage-fed kernels run: on real
   * GPUs; for one query per sequence (decoding: a copy of the whole KV cache
   * per token would cost more than it saves); where a row is not a multiple
   * of 64 floats (a copy's 256-byte pitch), a view is not 16-byte aligned,
   * or a side passes the texture limit. The caller releases them after
   * recording its dispatches.
   */
  #attentionTextures(
    dims: AttentionDims,
    xs: readonly GpuTensor[],
  ): GPUTexture[] | null {
    const { batch, tq, heads, kvHeads, headDim } = dims;
    const kvRows = dims.kvRows ?? dims.tk;
    const lim = this.planner.textureLimit;
    const shapes: [number, number][] = [
      [batch * tq, heads * headDim],
      [batch * kvRows, kvHeads * headDim],
      [batch * kvRows, kvHeads * headDim],
      [batch * tq, heads * headDim],
    ];
    if (!this.ctx.isFallback || tq < 2) return null;
    for (const [i, x] of xs.entries()) {
      const [rows, cols] = shapes[i];
      if (cols % 64 !== 0 || rows > lim || cols / 4 > lim || x.offset % 16) {
        return null;
      }
    }
    return xs.map((x, i) => {
      const [rows, cols] = shapes[i];
      const t = this.ctx.acquireTexture(cols / 4, rows);
      this.ctx.copyToTexture(x.buffer, x.offset, cols * 4, t, cols / 4, rows);
      return t;
    });
  }

  /** Causal GQA attention; returns out and lse [B·H·Tq]. */
  attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    dims: AttentionDims,
  ): { out: Tensor; lse: Tensor } {
    const op = "attention";
    const { u } = this.#checkAttention(op, q, k, v, dims);
    const gq = gpu(q, op, "q"), gk = gpu(k, op, "k"), gv = gpu(v, op, "v");
    const out = this.#new(q.shape);
    const rows = dims.batch * dims.heads * dims.tq;
    const lse = this.#new([rows]);
    const tex = this.#attentionTextures(dims, [gq, gk, gv]);
    if (tex) {
      this.ctx.run(
        attentionTexKernel(dims.headDim),
        [out, lse],
        u,
        grid(rows),
        tex,
      );
      for (const t of tex) this.ctx.releaseTexture(t);
      return { out, lse };
    }
    this.ctx.run(
      attentionKernel(dims.headDim),
      [gq, gk, gv, out, lse],
      u,
      grid(rows),
    );
    return { out, lse };
  }

  /** Backward of attention: dq, dk, dv. */
  attentionBackward(
    dout: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    dims: AttentionDims,
  ): { dq: Tensor; dk: Tensor; dv: Tensor } {
    const op = "attentionBackward";
    const { u, kvRows } = this.#checkAttention(op, q, k, v, dims);
    const rows = dims.batch * dims.heads * dims.tq;
    expectShape(op, "dout", dout, q.shape);
    expectShape(op, "out", out, q.shape);
    expectShape(op, "lse", lse, [rows]);
    const gdo = gpu(dout, op, "dout"),
      gq = gpu(q, op, "q"),
      gk = gpu(k, op, "k");
    const gv = gpu(v, op, "v"),
      go = gpu(out, op, "out"),
      gl = gpu(lse, op, "lse");
    const d = dims.headDim;
    const delta = this.#new([rows]);
    this.ctx.run(attentionDeltaKernel(d), [gdo, go, delta], u, grid(rows));
    const dq = this.#new(q.shape),
      dk = this.#new(k.shape),
      dv = this.#new(v.shape);
    const kvThreads = dims.batch * dims.kvHeads * kvRows;
    const tex = this.#attentionTextures(dims, [gq, gk, gv, gdo]);
    if (tex) {
      this.ctx.run(
        attentionDqTexKernel(d),
        [gl, delta, dq],
        u,
        grid(rows),
        tex,
      );
      this.ctx.run(
        attentionDkvTexKernel(d),
        [gl, delta, dk, dv],
        u,
        grid(kvThreads),
        tex,
      );
      for (const t of tex) this.ctx.releaseTexture(t);
    } else {
      this.ctx.run(
        attentionDqKernel(d),
        [gdo, gq, gk, gv, gl, delta, dq],
        u,
        grid(rows),
      );
      const chunks = this.ctx.isFallback ? 1 : Math.min(
        DKV_MAX_CHUNKS,
        Math.ceil(dims.tq / DKV_CHUNK),
        // each partial buffer is one binding
        Math.floor(this.maxBindingBytes / (dk.size * 4)),
      );
      if (chunks > 1) {
        // Partial dk, dv per chunk of queries, then summed in chunk order.
        const bytes = chunks * dk.size * 4;
        const pk = this.ctx.acquire(bytes), pv = this.ctx.acquire(bytes);
        const parts = [pk, pv].map((buffer) => ({ buffer, bytes }));
        this.ctx.run(
          attentionDkvKernel(d, true),
          [gdo, gq, gk, gv, gl, delta, ...parts],
          [...u, Math.ceil(dims.tq / chunks)],
          grid(kvThreads * chunks),
        );
        for (const [i, out] of [dk, dv].entries()) {
          this.ctx.run(
            SPLIT_K_REDUCE,
            [parts[i], out],
            [dk.size, chunks, 1, 0],
            grid(dk.size),
          );
        }
        this.ctx.release(pk);
        this.ctx.release(pv);
      } else {
        this.ctx.run(
          attentionDkvKernel(d),
          [gdo, gq, gk, gv, gl, delta, dk, dv],
          u,
          grid(kvThreads),
        );
      }
    }
    this.free(delta);
    return { dq, dk, dv };
  }

  /** KV-cache append: src rows into rows start.. of each sequence of cache. */
  writeRows(
    cache: Tensor,
    src: Tensor,
    dims: { batch: number; rows: number; start: number },
  ): void {
    const op = "writeRows";
    const [cr, c] = dims2(cache, op, "cache");
    const [sr, sc] = dims2(src, op, "src");
    positiveInt(op, "batch", dims.batch);
    positiveInt(op, "rows", dims.rows);
    const n = sr / dims.batch;
    if (
      cr !== dims.batch * dims.rows || sc !== c || !Number.isInteger(n) ||
      !Number.isInteger(dims.start) || dims.start < 0 ||
      dims.start + n > dims.rows
    ) {
      throw new ShapeError(
        op,
        `cannot write src ${
          fmtShape(src.shape)
        } at row ${dims.start} of cache ${fmtShape(cache.shape)} ` +
          `(batch ${dims.batch}, rows ${dims.rows})`,
      );
    }
    const gc = gpu(cache, op, "cache"), gs = gpu(src, op, "src");
    const total = sr * c;
    this.ctx.run(
      WRITE_ROWS,
      [gc, gs],
      [total, n, c, dims.rows, dims.start],
      grid(total),
    );
  }

  /** h = silu(gate) · up. */
  swiglu(gate: Tensor, up: Tensor): Tensor {
    const gg = gpu(gate, "swiglu", "gate"), gu = gpu(up, "swiglu", "up");
    expectShape("swiglu", "up", up, gate.shape);
    const h = this.#new(gate.shape);
    const tex = this.#flatTextures([gg, gu]);
    if (tex) this.#flatRun(SWIGLU_TEX, tex, [h], gg.size);
    else this.ctx.run(SWIGLU, [gg, gu, h], [gg.size], grid(gg.size));
    return h;
  }

  /** Backward of swiglu. */
  swigluBackward(
    dh: Tensor,
    gate: Tensor,
    up: Tensor,
  ): { dgate: Tensor; dup: Tensor } {
    const op = "swigluBackward";
    const gd = gpu(dh, op, "dh"),
      gg = gpu(gate, op, "gate"),
      gu = gpu(up, op, "up");
    expectShape(op, "up", up, gate.shape);
    expectShape(op, "dh", dh, gate.shape);
    const dgate = this.#new(gate.shape), dup = this.#new(gate.shape);
    const tex = this.#flatTextures([gd, gg, gu]);
    if (tex) {
      this.#flatRun(SWIGLU_BACKWARD_TEX, tex, [dgate, dup], gg.size);
      return { dgate, dup };
    }
    this.ctx.run(
      SWIGLU_BACKWARD,
      [gd, gg, gu, dgate, dup],
      [gg.size],
      grid(gg.size),
    );
    return { dgate, dup };
  }

  /** out[i] = table[ids[i]]. */
  embedding(table: Tensor, ids: Tensor): Tensor {
    const op = "embedding";
    const [v, c] = dims2(table, op, "table");
    const gi = gpu(ids, op, "ids", "i32");
    const { t: gt, temp } = this.#widened(table, op, "table");
    try {
      return this.#embedRows(gt, gi, v, c);
    } finally {
      if (temp) this.free(gt);
    }
  }

  /** out[i] = table[ids[i]] for an f32 table. */
  #embedRows(gt: GpuTensor, gi: GpuTensor, v: number, c: number): Tensor {
    const out = this.#new([gi.size, c]);
    const total = gi.size * c;
    if (!gt.split && !out.split) {
      this.ctx.run(EMBEDDING, [gt, gi, out], [total, c, v], grid(total));
      return out;
    }
    // every (out block, table block) pair that shares columns; ids outside
    // the table keep the cleared zeros
    this.#clear(out);
    const tbs = gt.blocks();
    for (const ob of out.blocks()) {
      const ow = ob.c1 - ob.c0, on = (ob.r1 - ob.r0) * ow;
      for (const tb of tbs) {
        if (tb.c1 <= ob.c0 || tb.c0 >= ob.c1) continue;
        this.ctx.run(
          EMBEDDING_BLOCK,
          [{ buffer: tb.buffer, bytes: tb.bytes }, gi, {
            buffer: ob.buffer,
            bytes: ob.bytes,
          }],
          [on, ow, ob.r0, ob.c0, tb.r0, tb.r1, tb.c0, tb.c1],
          grid(on),
        );
      }
    }
    return out;
  }

  /** Scatter-add dy into a new [vocab, C], one thread per column in id order. */
  embeddingBackward(dy: Tensor, ids: Tensor, vocab: number): Tensor {
    const op = "embeddingBackward";
    positiveInt(op, "vocab", vocab);
    const [n, c] = dims2(dy, op, "dy");
    const gd = gpu(dy, op, "dy"), gi = gpu(ids, op, "ids", "i32");
    if (gi.size !== n) {
      throw new ShapeError(
        op,
        `ids ${fmtShape(ids.shape)} has ${gi.size} ids but dy ${
          fmtShape(dy.shape)
        } has ${n} rows`,
      );
    }
    const dt = this.#new([vocab, c]);
    this.#clear(dt);
    if (!dt.split) {
      this.ctx.run(EMBEDDING_BACKWARD, [gd, gi, dt], [n, c, vocab], grid(c));
      return dt;
    }
    for (const b of dt.blocks()) {
      this.ctx.run(
        EMBEDDING_BACKWARD_BLOCK,
        [gd, gi, { buffer: b.buffer, bytes: b.bytes }],
        [n, c, b.r0, b.r1, b.c0, b.c1],
        grid(b.c1 - b.c0),
      );
    }
    return dt;
  }

  // ---- losses -----------------------------------------------------------------

  /** Log-softmax of each row gathered at the targets, plus the row lse. */
  logSoftmaxGather(
    logits: Tensor,
    targets: Tensor,
  ): { logprobs: Tensor; lse: Tensor } {
    const op = "logSoftmaxGather";
    const [n, v] = dims2(logits, op, "logits");
    expectShape(op, "targets", targets, [n]);
    const gl = gpuAny(logits, op, "logits"),
      gt = gpu(targets, op, "targets", "i32");
    const logprobs = this.#new([n]), lse = this.#new([n]);
    if (gl.split) {
      this.#logSoftmaxSplit(gl, gt, logprobs, lse);
      return { logprobs, lse };
    }
    this.ctx.run(
      LOG_SOFTMAX_GATHER,
      [gl, gt, logprobs, lse],
      [n, v],
      grid(n, 1),
    );
    return { logprobs, lse };
  }

  /**
   * Log-softmax over logits split into blocks: each block's row maxima, the
   * row max over blocks, each block's Σ exp(x − max), then per row the block
   * sums added in block order.
   */
  #logSoftmaxSplit(
    gl: GpuTensor,
    gt: GpuTensor,
    logprobs: GpuTensor,
    lse: GpuTensor,
  ): void {
    const op = "logSoftmaxGather";
    const [n, v] = gl.shape;
    const nb = blockCols(gl.layout);
    const scratch = (elems: number): Binding => {
      if (elems * 4 > this.maxBindingBytes) {
        throw new BindingLimitError(
          op,
          "logits",
          this.maxBindingBytes,
          `${fmtShape(gl.shape)} needs ${
            elems * 4
          } bytes of per-block partial sums`,
        );
      }
      return { buffer: this.ctx.acquire(elems * 4), bytes: elems * 4 };
    };
    const pmax = scratch(n * nb), psum = scratch(n * nb);
    const mx = scratch(n), tlogit = scratch(n);
    const blocks = gl.blocks();
    const u = (b: Block) => [
      b.r1 - b.r0,
      b.c1 - b.c0,
      b.r0,
      b.c0,
      nb,
      Math.floor(b.c0 / gl.layout.colsPer),
    ];
    const bind = (b: Block): Binding => ({ buffer: b.buffer, bytes: b.bytes });
    for (const b of blocks) {
      this.ctx.run(
        LSE_BLOCK_MAX,
        [bind(b), gt, pmax, tlogit],
        u(b),
        grid(b.r1 - b.r0, 1),
      );
    }
    this.ctx.run(LSE_ROW_MAX, [pmax, mx], [n, nb], grid(n));
    for (const b of blocks) {
      this.ctx.run(
        LSE_BLOCK_SUM,
        [bind(b), mx, psum],
        u(b),
        grid(b.r1 - b.r0, 1),
      );
    }
    this.ctx.run(
      LSE_FINAL,
      [psum, mx, tlogit, gt, logprobs, lse],
      [n, nb, v],
      grid(n),
    );
    for (const x of [pmax, psum, mx, tlogit]) this.ctx.release(x.buffer);
  }

  /** d logits = dlp · (onehot(target) − softmax). */
  logSoftmaxGatherBackward(
    dlogprobs: Tensor,
    logits: Tensor,
    targets: Tensor,
    lse: Tensor,
  ): Tensor {
    const op = "logSoftmaxGatherBackward";
    const [n, v] = dims2(logits, op, "logits");
    expectShape(op, "dlogprobs", dlogprobs, [n]);
    expectShape(op, "targets", targets, [n]);
    expectShape(op, "lse", lse, [n]);
    const gd = gpu(dlogprobs, op, "dlogprobs");
    const gl = gpuAny(logits, op, "logits");
    const gt = gpu(targets, op, "targets", "i32"), gs = gpu(lse, op, "lse");
    const out = this.#new([n, v]);
    const total = n * v;
    if (gl.split || out.split) {
      // same shape, same layout: block i of out from block i of logits
      const ob = out.blocks();
      gl.blocks().forEach((b, i) => {
        const w = b.c1 - b.c0, cnt = (b.r1 - b.r0) * w;
        this.ctx.run(
          LSE_BACKWARD_BLOCK,
          [gd, { buffer: b.buffer, bytes: b.bytes }, gt, gs, {
            buffer: ob[i].buffer,
            bytes: ob[i].bytes,
          }],
          [cnt, w, b.r0, b.c0],
          grid(cnt),
        );
      });
      return out;
    }
    this.ctx.run(
      LOG_SOFTMAX_GATHER_BACKWARD,
      [gd, gl, gt, gs, out],
      [total, v],
      grid(total),
    );
    return out;
  }

  // ---- optimizer and sampling ---------------------------------------------------

  /**
   * AdamW over all tensors, as many per dispatch as the binding limit allows;
   * tensors made by one `zerosPacked` call (params, grads, m and v each) are
   * swept as one: all LoRA tensors of a stage in one dispatch.
   */
  adamw(
    params: readonly Tensor[],
    grads: readonly Tensor[],
    m: readonly Tensor[],
    v: readonly Tensor[],
    step: AdamStep,
  ): void {
    const op = "adamw";
    if (
      grads.length !== params.length || m.length !== params.length ||
      v.length !== params.length
    ) {
      throw new ShapeError(
        op,
        `params, grads, m and v must have the same length: got ${params.length}, ${grads.length}, ${m.length}, ${v.length}`,
      );
    }
    if (!Number.isInteger(step.step) || step.step < 1) {
      throw new RangeError(
        `adamw: step must be an integer ≥ 1: got ${step.step}`,
      );
    }
    params.forEach((p, i) => {
      expectShape(op, `grads[${i}]`, grads[i], p.shape);
      expectShape(op, `m[${i}]`, m[i], p.shape);
      expectShape(op, `v[${i}]`, v[i], p.shape);
    });
    const lists = [params, grads, m, v].map((l, j) =>
      l.map((t, i) =>
        gpuAny(t, op, `${["params", "grads", "m", "v"][j]}[${i}]`)
      )
    );
    // a whole arena per list (packed tensors) is one group: one sweep
    const groups: { size: number; bs: Binding[] }[] = [];
    for (const run of arenaRuns(lists)) {
      if (run.kind === "arenas") {
        groups.push({
          size: run.arenas[0].bytes / 4,
          bs: run.arenas.map((a) => ({ buffer: a.buffer, bytes: a.bytes })),
        });
        continue;
      }
      const four = lists.map((l) => l[run.index]);
      if (!four[0].split) {
        if (four[0].size > 0) groups.push({ size: four[0].size, bs: four });
        continue;
      }
      // same shapes, same layouts: each block is a tensor of its own
      const blocks = four.map((t) => this.#bindings(t));
      blocks[0].forEach((b, j) =>
        groups.push({ size: b.bytes / 4, bs: blocks.map((l) => l[j]) })
      );
    }
    const bc1 = 1 - step.beta1 ** step.step, bc2 = 1 - step.beta2 ** step.step;
    const head = [
      step.lr,
      step.beta1,
      step.beta2,
      step.eps,
      step.weightDecay,
      bc1,
      bc2,
      step.gradScale,
    ];
    for (let s = 0; s < groups.length; s += this.#adamGroup) {
      const part = groups.slice(s, s + this.#adamGroup);
      const ends: number[] = [];
      let total = 0;
      for (const g of part) ends.push(total += g.size);
      this.ctx.run(
        adamwKernel(part.length),
        part.flatMap((g) => g.bs),
        [...head, ...ends],
        grid(total),
      );
    }
  }

  /** One token per row of logits [B,V] with the given uniforms. */
  sample(
    logits: Tensor,
    uniforms: Tensor,
    opts: SampleOptions,
  ): { tokens: Tensor; logprobs: Tensor } {
    const op = "sample";
    const [b, v] = dims2(logits, op, "logits");
    expectShape(op, "uniforms", uniforms, [b]);
    if (v < 1 || v > 1 << 21) {
      throw new ShapeError(
        op,
        `vocabulary must be in [1, ${1 << 21}]: logits ${
          fmtShape(logits.shape)
        }`,
      );
    }
    if (!(opts.temperature >= 0) || !Number.isFinite(opts.temperature)) {
      throw new RangeError(
        `sample: temperature must be a finite number ≥ 0: got ${opts.temperature}`,
      );
    }
    if (!Number.isInteger(opts.topK)) {
      throw new RangeError(
        `sample: topK must be an integer (-1 keeps all): got ${opts.topK}`,
      );
    }
    if (!(opts.topP > 0 && opts.topP <= 1)) {
      throw new RangeError(`sample: topP must be in (0, 1]: got ${opts.topP}`);
    }
    const minP = opts.minP ?? 0;
    if (!(minP >= 0 && minP <= 1)) {
      throw new RangeError(`sample: minP must be in [0, 1]: got ${minP}`);
    }
    const gl = gpuAny(logits, op, "logits");
    const gu = gpu(uniforms, op, "uniforms");
    // a group of whole rows at a time (all of them when logits is unsplit):
    // the kernel searches each row as a whole
    const rowsPer = gl.split ? Math.floor(this.maxBindingBytes / (v * 4)) : b;
    if (rowsPer < 1) {
      throw new BindingLimitError(
        op,
        "logits",
        this.maxBindingBytes,
        `${fmtShape(logits.shape)}: one row is ${v * 4} bytes, and ${op} ` +
          `needs a whole row in one binding`,
      );
    }
    const tokens = this.#new([b], "i32"), logprobs = this.#new([b]);
    const topK = opts.topK > 0 && opts.topK < v ? opts.topK : 0;
    const lanes = this.ctx.isFallback
      ? cpuSampleLanes(v, this.#sampleLanes)
      : this.#sampleLanes;
    for (let r0 = 0; r0 < b; r0 += rowsPer) {
      const rows = Math.min(rowsPer, b - r0);
      const tile = tileOf(this.ctx, gl, { r0, r1: r0 + rows, c0: 0, c1: v });
      const bytes = Math.max(4, rows * v * 4);
      const scratch = { buffer: this.ctx.acquire(bytes), bytes };
      this.ctx.run(
        sampleKernel(lanes),
        [tile.binding, gu, scratch, tokens, logprobs],
        [rows, v, opts.temperature, topK, opts.topP, r0, minP],
        grid(rows, 1),
      );
      this.ctx.release(scratch.buffer);
      if (tile.temp) this.ctx.release(tile.temp);
    }
    return { tokens, logprobs };
  }

  /** Repetition penalty in place where `seen` is non-zero (shaders/penalty.ts). */
  repetitionPenalty(logits: Tensor, seen: Tensor, penalty: number): void {
    const op = "repetitionPenalty";
    dims2(logits, op, "logits");
    expectShape(op, "seen", seen, logits.shape);
    if (!(penalty > 0) || !Number.isFinite(penalty)) {
      throw new RangeError(
        `${op}: penalty must be a finite number > 0: got ${penalty}`,
      );
    }
    const gl = gpuAny(logits, op, "logits"), gs = gpuAny(seen, op, "seen");
    this.#elementwise(REPETITION_PENALTY, [gl, gs], [penalty]);
  }

  /** seen[b, tokens[b·n + i]] = 1, in place, block by block of seen. */
  markTokens(seen: Tensor, tokens: Tensor): void {
    const op = "markTokens";
    const [b, v] = dims2(seen, op, "seen");
    const gs = gpuAny(seen, op, "seen"), gt = gpu(tokens, op, "tokens", "i32");
    if (tokens.shape.length !== 1 || b === 0 || gt.size % b !== 0) {
      throw new ShapeError(
        op,
        `tokens ${fmtShape(tokens.shape)} must be [B·n] for seen ${
          fmtShape(seen.shape)
        }`,
      );
    }
    const n = gt.size / b;
    if (!gs.split) {
      this.ctx.run(
        MARK_TOKENS,
        [gt, gs],
        [gt.size, n, 0, b, 0, v],
        grid(gt.size),
      );
      return;
    }
    for (const bl of gs.blocks()) {
      this.ctx.run(
        MARK_TOKENS,
        [gt, { buffer: bl.buffer, bytes: bl.bytes }],
        [gt.size, n, bl.r0, bl.r1, bl.c0, bl.c1],
        grid(gt.size),
      );
    }
  }
}
