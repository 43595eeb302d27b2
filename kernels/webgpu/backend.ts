/**
 * The WebGPU backend: every {@linkcode Backend} op as WGSL compute shaders
 * through `navigator.gpu`. Tensors stay in pooled GPU buffers; ops record into
 * one command encoder that is submitted without waiting; only `read`,
 * `readInts`, `sumOfSquares` and `sync` wait.
 *
 * @module
 */

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
  positiveInt,
  ShapeError,
} from "./check.ts";
import { type Binding, GpuContext, type Kernel } from "./context.ts";
import { GpuTensor } from "./tensor.ts";
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
  configName,
  type MatmulConfig,
  matmulGroups,
  matmulKernel,
  type MatmulShape,
  texMatmulKernel,
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
import { sampleKernel } from "./shaders/sample.ts";
import {
  attentionDeltaKernel,
  attentionDkvKernel,
  attentionDqKernel,
  attentionKernel,
} from "./shaders/attention.ts";

/** Options of {@linkcode openWebGpuBackend}. */
export interface WebGpuOptions {
  /** Time the matmul candidates at open (cached per adapter). @default {true} */
  autotune?: boolean;
  /** Adapter preference. @default {"high-performance"} */
  powerPreference?: GPUPowerPreference;
}

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
  const g = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!g) return null;
  ensureRuntimeDir();
  const adapter = await g.requestAdapter({
    powerPreference: opts.powerPreference ?? "high-performance",
  });
  if (!adapter) return null;
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS) requiredLimits[k] = adapter.limits[k];
  const device = await adapter.requestDevice({ requiredLimits });
  const cpu = isCpuAdapter(adapter);
  const name = adapter.info.description || adapter.info.vendor ||
    "unknown adapter";
  const be = new WebGpuBackend(new GpuContext(device, name, cpu));
  if (opts.autotune ?? true) await be.tune();
  return be;
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
  readonly #texKernels = new Map<string, Kernel>();
  readonly #adamGroup: number;
  readonly #sampleLanes: number;

  /** Wraps a context; prefer {@linkcode openWebGpuBackend}. */
  constructor(ctx: GpuContext) {
    this.ctx = ctx;
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
    let n = 1;
    for (const d of shape) n *= d;
    return new GpuTensor(this.ctx.acquire(Math.max(4, n * 4)), shape, dtype);
  }

  // ---- memory -----------------------------------------------------------------

  /** Upload f32 data (copied). */
  fromArray(data: Float32Array, shape: readonly number[]): Tensor {
    const t = this.#new(shape);
    if (data.length !== t.size) {
      this.ctx.release(t.detach());
      throw new ShapeError(
        "fromArray",
        `data length ${data.length} does not match shape ${fmtShape(shape)}`,
      );
    }
    this.ctx.write(t.buffer, data);
    return t;
  }

  /** Upload i32 data (copied). */
  fromInts(data: Int32Array, shape: readonly number[]): Tensor {
    const t = this.#new(shape, "i32");
    if (data.length !== t.size) {
      this.ctx.release(t.detach());
      throw new ShapeError(
        "fromInts",
        `data length ${data.length} does not match shape ${fmtShape(shape)}`,
      );
    }
    this.ctx.write(t.buffer, data);
    return t;
  }

  /** A new f32 tensor of zeros. */
  zeros(shape: readonly number[]): Tensor {
    const t = this.#new(shape);
    this.#clear(t);
    return t;
  }

  #clear(t: GpuTensor): void {
    if (t.size > 0) this.ctx.encoder().clearBuffer(t.buffer, 0, t.size * 4);
  }

  /** Copy an f32 tensor back to the host (one GPU wait). */
  async read(t: Tensor): Promise<Float32Array> {
    const g = gpu(t, "read", "t");
    return new Float32Array(await this.ctx.read(g.buffer, g.size * 4));
  }

  /** Copy several f32 tensors back to the host (one GPU wait for all). */
  async readMany(ts: readonly Tensor[]): Promise<Float32Array[]> {
    const gs = ts.map((t, i) => gpu(t, "readMany", `ts[${i}]`));
    const bufs = await this.ctx.readMany(
      gs.map((g) => ({ buffer: g.buffer, bytes: g.size * 4 })),
    );
    return bufs.map((b) => new Float32Array(b));
  }

  /** Copy an i32 tensor back to the host (one GPU wait). */
  async readInts(t: Tensor): Promise<Int32Array> {
    const g = gpu(t, "readInts", "t", "i32");
    return new Int32Array(await this.ctx.read(g.buffer, g.size * 4));
  }

  /** Return a tensor's buffer to the pool. */
  free(t: Tensor): void {
    if (!(t instanceof GpuTensor)) {
      throw new ShapeError("free", "t is not a webgpu tensor");
    }
    this.ctx.release(t.detach());
  }

  /** Wait for all recorded work. */
  sync(): Promise<void> {
    return this.ctx.sync();
  }

  // ---- elementwise ------------------------------------------------------------

  /** out += alpha · x. */
  axpy(out: Tensor, x: Tensor, alpha: number): void {
    const o = gpu(out, "axpy", "out"), xx = gpu(x, "axpy", "x");
    expectShape("axpy", "x", x, out.shape);
    this.ctx.run(AXPY, [o, xx], [o.size, alpha], grid(o.size));
  }

  /** a + b. */
  add(a: Tensor, b: Tensor): Tensor {
    const ga = gpu(a, "add", "a"), gb = gpu(b, "add", "b");
    expectShape("add", "b", b, a.shape);
    const out = this.#new(a.shape);
    this.ctx.run(ADD, [ga, gb, out], [ga.size], grid(ga.size));
    return out;
  }

  /** a ⊙ b. */
  mul(a: Tensor, b: Tensor): Tensor {
    const ga = gpu(a, "mul", "a"), gb = gpu(b, "mul", "b");
    expectShape("mul", "b", b, a.shape);
    const out = this.#new(a.shape);
    this.ctx.run(MUL, [ga, gb, out], [ga.size], grid(ga.size));
    return out;
  }

  /** Σ x² over all tensors: per-chunk partial sums, then one fixed-order total. */
  async sumOfSquares(ts: readonly Tensor[]): Promise<number> {
    const gs = ts.map((t, i) => gpu(t, "sumOfSquares", `ts[${i}]`));
    const chunks = gs.map((g) => Math.ceil(g.size / SUMSQ_CHUNK));
    const total = chunks.reduce((s, c) => s + c, 0);
    if (total === 0) return 0;
    const partial = this.#new([total]);
    const out = this.#new([1]);
    let offset = 0;
    gs.forEach((g, i) => {
      this.ctx.run(
        SUMSQ_PARTIAL,
        [g, partial],
        [g.size, offset],
        grid(chunks[i], 1),
      );
      offset += chunks[i];
    });
    this.ctx.run(SUM_FINAL, [partial, out], [total], [1]);
    this.free(partial);
    const v = (await this.read(out))[0];
    this.free(out);
    return v;
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
      cfg = this.planner.fallback;
    }
    const transA = o.transA ?? false, transB = o.transB ?? false;
    const shape: MatmulShape = {
      transA,
      transB,
      vec: canVectorize(m, n, k, transA, transB),
      lora: o.lora ? o.lora.layout : "",
    };
    const bindings: Binding[] = [a, b, c];
    if (o.lora) bindings.push(o.lora.xa, o.lora.lb);
    this.ctx.run(
      matmulKernel(cfg, shape),
      bindings,
      [m, n, k, o.lora?.r ?? 0, o.alpha ?? 1, o.beta ?? 0, o.lora?.scale ?? 0],
      matmulGroups(cfg, m, n),
    );
  }

  /**
   * The texture-fed product (CPU adapters): copies a, and b, into textures in
   * blocks of at most the texture size limit and records one dispatch per
   * block of c. False (nothing recorded) when the shape does not fit: a
   * transposed, k or n (when b is [K,N]) not a multiple of 64 (texture copies
   * need 256-byte row pitches), n not a multiple of 4, or k past the limit.
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
    const transB = o.transB ?? false;
    const lim = this.planner.textureLimit;
    if (o.transA || k === 0 || k % 64 !== 0 || k / 4 > lim || n % 4 !== 0) {
      return false;
    }
    if (!transB && (n % 64 !== 0 || k > lim)) return false;
    const lora = o.lora?.layout ?? "";
    const key = `${configName(cfg)}|${transB}|${lora}`;
    let kernel = this.#texKernels.get(key);
    if (!kernel) {
      kernel = texMatmulKernel(cfg, { transB, lora });
      this.#texKernels.set(key, kernel);
    }
    const bindings: Binding[] = [c];
    if (o.lora) bindings.push(o.lora.xa, o.lora.lb);
    const k4 = k / 4;
    // columns of c per block: rows of the b texture, or 4 per texel of its width
    const nStep = transB ? lim : 4 * lim;
    for (let row0 = 0; row0 < m; row0 += lim) {
      const mc = Math.min(lim, m - row0);
      const ta = this.ctx.acquireTexture(k4, mc);
      this.ctx.copyToTexture(a.buffer, row0 * k * 4, k * 4, ta, k4, mc);
      for (let col0 = 0; col0 < n; col0 += nStep) {
        const nc = Math.min(nStep, n - col0);
        let tb: GPUTexture;
        if (transB) {
          tb = this.ctx.acquireTexture(k4, nc);
          this.ctx.copyToTexture(b.buffer, col0 * k * 4, k * 4, tb, k4, nc);
        } else {
          tb = this.ctx.acquireTexture(nc / 4, k);
          this.ctx.copyToTexture(b.buffer, col0 * 4, n * 4, tb, nc / 4, k);
        }
        this.ctx.run(
          kernel,
          bindings,
          [
            mc,
            nc,
            k,
            o.lora?.r ?? 0,
            o.alpha ?? 1,
            o.beta ?? 0,
            o.lora?.scale ?? 0,
            n,
            row0,
            col0,
          ],
          matmulGroups(cfg, mc, nc),
          [ta, tb],
        );
        this.ctx.releaseTexture(tb);
      }
      this.ctx.releaseTexture(ta);
    }
    return true;
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
    const ga = gpu(a, op, "a"), gb = gpu(b, op, "b");
    let out: GpuTensor;
    let beta = 0;
    if (opts.out !== undefined) {
      out = gpu(opts.out, op, "out");
      expectShape(op, "out", out, [m, n]);
      beta = opts.beta ?? 0;
    } else {
      out = this.#new([m, n]);
    }
    this.#matmul(ga, gb, out, m, n, k, {
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
    const gx = gpu(x, op, "x"), gw = gpu(w, op, "w");
    const y = this.#new([n, outF]);
    if (!lora) {
      this.#matmul(gx, gw, y, n, outF, inF, { transB: true });
      return { y };
    }
    const la = gpu(lora.a, op, "lora.a"), lb = gpu(lora.b, op, "lora.b");
    const xa = this.#new([n, rank]);
    this.#matmul(gx, la, xa, n, rank, inF, { transB: true });
    this.#matmul(gx, gw, y, n, outF, inF, {
      transB: true,
      lora: { xa, lb, r: rank, scale: lora.scale, layout: "t" },
    });
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
    const gdy = gpu(dy, op, "dy"), gx = gpu(x, op, "x"), gw = gpu(w, op, "w");
    const dx = this.#new([n, inF]);
    if (!lora) {
      this.#matmul(gdy, gw, dx, n, inF, outF, {});
      return { dx };
    }
    const la = gpu(lora.a, op, "lora.a"), lb = gpu(lora.b, op, "lora.b");
    // dyb = dy B [n, R]
    const dyb = this.#new([n, rank]);
    this.#matmul(gdy, lb, dyb, n, rank, outF, {});
    this.#matmul(gdy, gw, dx, n, inF, outF, {
      lora: { xa: dyb, lb: la, r: rank, scale: lora.scale, layout: "n" },
    });
    const da = this.#new([rank, inF]);
    this.#matmul(dyb, gx, da, rank, inF, n, {
      transA: true,
      alpha: lora.scale,
    });
    let gxa: GpuTensor;
    let own = false;
    if (xa) {
      gxa = gpu(xa, op, "xa");
      expectShape(op, "xa", xa, [n, rank]);
    } else {
      gxa = this.#new([n, rank]);
      own = true;
      this.#matmul(gx, la, gxa, n, rank, inF, { transB: true });
    }
    const db = this.#new([outF, rank]);
    this.#matmul(gdy, gxa, db, outF, rank, n, {
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
    const [n, c] = dims2(x, op, "x");
    expectShape(op, "w", w, [c]);
    const gx = gpu(x, op, "x"), gw = gpu(w, op, "w");
    const y = this.#new([n, c]), rstd = this.#new([n]);
    this.ctx.run(RMSNORM, [gx, gw, y, rstd], [n, c, eps], grid(n, 1));
    return { y, rstd };
  }

  /** Backward of rmsNorm: dx [N,C], dw [C]. */
  rmsNormBackward(
    dy: Tensor,
    x: Tensor,
    w: Tensor,
    rstd: Tensor,
  ): { dx: Tensor; dw: Tensor } {
    const op = "rmsNormBackward";
    const [n, c] = dims2(x, op, "x");
    expectShape(op, "dy", dy, [n, c]);
    expectShape(op, "w", w, [c]);
    expectShape(op, "rstd", rstd, [n]);
    const gdy = gpu(dy, op, "dy"), gx = gpu(x, op, "x"), gw = gpu(w, op, "w");
    const gr = gpu(rstd, op, "rstd");
    const dx = this.#new([n, c]), dw = this.#new([c]);
    this.ctx.run(
      RMSNORM_BACKWARD_DX,
      [gdy, gx, gw, gr, dx],
      [n, c],
      grid(n, 1),
    );
    this.ctx.run(RMSNORM_BACKWARD_DW, [gdy, gx, gr, dw], [n, c], grid(c));
    return { dx, dw };
  }

  /** cos/sin table covering positions below `need`, computed as the CPU reference does. */
  #ropeTable(headDim: number, theta: number, need: number): RopeTable {
    const key = `${headDim}|${theta}`;
    const have = this.#ropeTables.get(key);
    if (have && have.rows >= need) return have;
    let rows = 512;
    while (rows < need) rows *= 2;
    const half = headDim / 2;
    const f32 = Math.fround;
    const invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) {
      invFreq[i] = f32(1 / f32(Math.pow(theta, f32((2 * i) / headDim))));
    }
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
    );
    const half = dims.headDim / 2;
    const y = this.#new(x.shape);
    const total = rows * dims.heads * half;
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
    this.ctx.run(
      attentionDqKernel(d),
      [gdo, gq, gk, gv, gl, delta, dq],
      u,
      grid(rows),
    );
    const kvThreads = dims.batch * dims.kvHeads * kvRows;
    this.ctx.run(
      attentionDkvKernel(d),
      [gdo, gq, gk, gv, gl, delta, dk, dv],
      u,
      grid(kvThreads),
    );
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
    this.ctx.run(SWIGLU, [gg, gu, h], [gg.size], grid(gg.size));
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
    const gt = gpu(table, op, "table"), gi = gpu(ids, op, "ids", "i32");
    const out = this.#new([gi.size, c]);
    const total = gi.size * c;
    this.ctx.run(EMBEDDING, [gt, gi, out], [total, c, v], grid(total));
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
    this.ctx.run(EMBEDDING_BACKWARD, [gd, gi, dt], [n, c, vocab], grid(c));
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
    const gl = gpu(logits, op, "logits"),
      gt = gpu(targets, op, "targets", "i32");
    const logprobs = this.#new([n]), lse = this.#new([n]);
    this.ctx.run(
      LOG_SOFTMAX_GATHER,
      [gl, gt, logprobs, lse],
      [n, v],
      grid(n, 1),
    );
    return { logprobs, lse };
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
    const gd = gpu(dlogprobs, op, "dlogprobs"), gl = gpu(logits, op, "logits");
    const gt = gpu(targets, op, "targets", "i32"), gs = gpu(lse, op, "lse");
    const out = this.#new([n, v]);
    const total = n * v;
    this.ctx.run(
      LOG_SOFTMAX_GATHER_BACKWARD,
      [gd, gl, gt, gs, out],
      [total, v],
      grid(total),
    );
    return out;
  }

  // ---- optimizer and sampling ---------------------------------------------------

  /** AdamW over all tensors, as many tensors per dispatch as the binding limit allows. */
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
    const groups: GpuTensor[][] = params.map((p, i) => {
      expectShape(op, `grads[${i}]`, grads[i], p.shape);
      expectShape(op, `m[${i}]`, m[i], p.shape);
      expectShape(op, `v[${i}]`, v[i], p.shape);
      return [
        gpu(p, op, `params[${i}]`),
        gpu(grads[i], op, `grads[${i}]`),
        gpu(m[i], op, `m[${i}]`),
        gpu(v[i], op, `v[${i}]`),
      ];
    }).filter((g) => g[0].size > 0);
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
      for (const g of part) ends.push(total += g[0].size);
      this.ctx.run(
        adamwKernel(part.length),
        part.flat(),
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
    const gl = gpu(logits, op, "logits"), gu = gpu(uniforms, op, "uniforms");
    const tokens = this.#new([b], "i32"), logprobs = this.#new([b]);
    const scratch = this.#new([b, v]);
    const topK = opts.topK > 0 && opts.topK < v ? opts.topK : 0;
    this.ctx.run(
      sampleKernel(this.#sampleLanes),
      [gl, gu, scratch, tokens, logprobs],
      [b, v, opts.temperature, topK, opts.topP],
      grid(b, 1),
    );
    this.free(scratch);
    return { tokens, logprobs };
  }
}
