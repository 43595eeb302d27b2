/**
 * The CPU reference backend: every op of {@linkcode Backend} in plain
 * TypeScript on host typed arrays. It is the oracle the other backends are
 * tested against, and the fallback when nothing faster is there.
 *
 * Each op checks its inputs' shapes and dtypes (throwing {@linkcode ShapeError}
 * naming the op and the shapes), allocates its outputs, and calls the math in
 * the file named for it (gemm.ts, rmsnorm.ts, attention.ts, …). Every sum runs
 * in a fixed order, so results are bit-identical run to run.
 *
 * @module
 */

import type { RopeScaling } from "../rope_freq.ts";
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
import { shapeSize } from "../backend.ts";
import { adamwUpdate } from "./adamw.ts";
import {
  attentionBackward,
  attentionForward,
  attnDimsOf,
} from "./attention.ts";
import {
  addForward,
  axpyForward,
  mulForward,
  sumOfSquaresOf,
  writeRowsForward,
} from "./elementwise.ts";
import { embeddingBackward, embeddingForward } from "./embedding.ts";
import { type GemmFn, gemmForward } from "./gemm.ts";
import type { LoraArrays } from "./linear.ts";
import { type HostKernels, referenceKernels } from "./host_kernels.ts";
import { MAX_SAMPLE_VOCAB, sampleRows } from "./sample.ts";
import { markSeen, penalizeSeen } from "./penalty.ts";
import { fmtShape, ShapeError } from "./shape_error.ts";
import { CpuTensor } from "./tensor.ts";
import type { WeightArray } from "./weight.ts";
import { HALF_FORMATS, type HalfBits } from "../half.ts";

/**
 * The plain-TypeScript backend (name "cpu").
 *
 * @example
 * ```ts
 * import { CpuBackend } from "./backend.ts";
 * const be = new CpuBackend();
 * const a = be.fromArray(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * console.log(await be.read(be.gemm(a, a))); // [7, 10, 15, 22]
 * ```
 */
export class CpuBackend implements Backend {
  /** "cpu" */
  readonly name: string = "cpu";
  /** Where the work runs. */
  readonly device: string = "TypeScript on the host CPU (one thread)";
  /** The matrix product every gemm and linear goes through. */
  protected readonly sgemm: GemmFn;
  /** The loops of the layer ops (SwiGLU, RMSNorm, RoPE, log-softmax). */
  protected readonly kernels: HostKernels;

  /**
   * `sgemm` replaces the TypeScript matrix product, `exp` the SwiGLU
   * exponential, and `kernels` any of the layer loops (subclasses pass
   * OpenBLAS and faster loops).
   */
  constructor(
    sgemm: GemmFn = gemmForward,
    exp: (x: number) => number = Math.exp,
    kernels: Partial<HostKernels> = {},
  ) {
    this.sgemm = sgemm;
    this.kernels = { ...referenceKernels(exp), ...kernels };
  }

  // ---- memory -----------------------------------------------------------------

  /** Upload f32 data (copied). */
  fromArray(data: Float32Array, shape: readonly number[]): Tensor {
    let n = 1;
    for (const d of shape) n *= d;
    // A mismatched length goes to the constructor, which names the problem.
    if (n !== data.length) return new CpuTensor(Float32Array.from(data), shape);
    const t = newF32(shape, false);
    (t.data as Float32Array).set(data);
    return t;
  }

  /** Upload i32 data (copied). */
  fromInts(data: Int32Array, shape: readonly number[]): Tensor {
    return new CpuTensor(Int32Array.from(data), shape);
  }

  /** Keep a frozen weight's 16-bit bits (copied); ops widen them as they read. */
  fromHalf(src: HalfBits, shape: readonly number[]): Tensor {
    if (!HALF_FORMATS.includes(src.format)) {
      throw new ShapeError(
        "fromHalf",
        `format must be one of ${HALF_FORMATS.join(", ")}: got ${src.format}`,
      );
    }
    // Kept, not copied: the host copy of a model's weights is this tensor's
    // data (a frozen weight is never written), so a process holds each
    // 16-bit weight once, not once more per stage that uses it.
    return new CpuTensor(src.bits, shape, src.format);
  }

  /** A new f32 tensor of zeros. */
  zeros(shape: readonly number[]): Tensor {
    return newF32(shape);
  }

  /**
   * Zeroed f32 tensors as views into one array, in order: each is used and
   * freed like any tensor (a view never goes back to the array pool).
   */
  zerosPacked(shapes: readonly (readonly number[])[]): Tensor[] {
    const sizes = shapes.map(shapeSize);
    const all = new Float32Array(sizes.reduce((a, b) => a + b, 0));
    let off = 0;
    return shapes.map((shape, i) => {
      const t = new CpuTensor(all.subarray(off, off + sizes[i]), shape);
      off += sizes[i];
      return t;
    });
  }

  /** Overwrite an f32 tensor with host data of the same length. */
  write(t: Tensor, data: Float32Array): void {
    const dst = f32(t, "write", "t");
    if (data.length !== dst.length) {
      throw new ShapeError(
        "write",
        `data length ${data.length} does not match t ${fmtShape(t.shape)}`,
      );
    }
    dst.set(data);
  }

  /** Set every element of an f32 tensor to zero. */
  zero(t: Tensor): void {
    f32(t, "zero", "t").fill(0);
  }

  /** `dst ← src` (same shapes). */
  copy(dst: Tensor, src: Tensor): void {
    sameShape("copy", ["dst", dst], ["src", src]);
    f32(dst, "copy", "dst").set(f32(src, "copy", "src"));
  }

  /**
   * A new f32 tensor with arbitrary contents, for an output its op writes in
   * full (skips the zero fill).
   */
  protected uninitialized(shape: readonly number[]): Tensor {
    return newF32(shape, false);
  }

  /** A copy of an f32 tensor's data. */
  read(t: Tensor): Promise<Float32Array> {
    return settle(() => f32(t, "read", "t").slice());
  }

  /** Copies of several f32 tensors' data. */
  readMany(ts: readonly Tensor[]): Promise<Float32Array[]> {
    return settle(() =>
      ts.map((t, i) => f32(t, "readMany", `ts[${i}]`).slice())
    );
  }

  /** A copy of an i32 tensor's data. */
  readInts(t: Tensor): Promise<Int32Array> {
    return settle(() => i32(t, "readInts", "t").slice());
  }

  /** Copies of several i32 and f32 tensors' data. */
  readMixed(
    ints: readonly Tensor[],
    floats: readonly Tensor[],
  ): Promise<{ ints: Int32Array[]; floats: Float32Array[] }> {
    return settle(() => ({
      ints: ints.map((t, i) => i32(t, "readMixed", `ints[${i}]`).slice()),
      floats: floats.map((t, i) => f32(t, "readMixed", `floats[${i}]`).slice()),
    }));
  }

  /** The live storage of an f32 tensor (no copy; CPU backends only). */
  f32View(t: Tensor): Float32Array {
    return f32(t, "f32View", "t");
  }

  /** The live storage of an i32 tensor (no copy; CPU backends only). */
  i32View(t: Tensor): Int32Array {
    return i32(t, "i32View", "t");
  }

  /** Drops the tensor's storage; using it afterwards throws. */
  free(t: Tensor): void {
    const c = cpu(t, "free", "t");
    const data = c.data;
    c.release();
    recycle(data);
  }

  /** Nothing to wait for: every op has finished when it returns. */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  // ---- elementwise --------------------------------------------------------------

  /** out += alpha · x. */
  axpy(out: Tensor, x: Tensor, alpha: number): void {
    sameShape("axpy", ["out", out], ["x", x]);
    axpyForward(f32(out, "axpy", "out"), f32(x, "axpy", "x"), alpha);
  }

  /** a + b. */
  add(a: Tensor, b: Tensor): Tensor {
    sameShape("add", ["a", a], ["b", b]);
    const out = newF32(a.shape, false);
    addForward(
      out.data as Float32Array,
      f32(a, "add", "a"),
      f32(b, "add", "b"),
    );
    return out;
  }

  /** a ⊙ b. */
  mul(a: Tensor, b: Tensor): Tensor {
    sameShape("mul", ["a", a], ["b", b]);
    const out = newF32(a.shape, false);
    mulForward(
      out.data as Float32Array,
      f32(a, "mul", "a"),
      f32(b, "mul", "b"),
    );
    return out;
  }

  /** Σ x² over all tensors, in order, in float64. */
  sumOfSquares(ts: readonly Tensor[]): Promise<number> {
    return settle(() =>
      sumOfSquaresOf(ts.map((t, i) => f32(t, "sumOfSquares", `ts[${i}]`)))
    );
  }

  sumOfSquaresTensor(ts: readonly Tensor[]): Tensor {
    const v = sumOfSquaresOf(
      ts.map((t, i) => f32(t, "sumOfSquaresTensor", `ts[${i}]`)),
    );
    return this.fromArray(new Float32Array([v]), [1]);
  }

  // ---- linear algebra -------------------------------------------------------------

  /** out = alpha · op(a) op(b) + beta · out. */
  gemm(a: Tensor, b: Tensor, opts: GemmOptions = {}): Tensor {
    const op = "gemm";
    const [ar, ac] = dims2(a, op, "a");
    const [br, bc] = dims2(b, op, "b");
    const transA = opts.transA ?? false;
    const transB = opts.transB ?? false;
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
    let out: CpuTensor;
    let beta = 0;
    if (opts.out !== undefined) {
      out = cpu(opts.out, op, "out");
      expectShape(op, "out", opts.out, [m, n]);
      f32(out, op, "out");
      beta = opts.beta ?? 0;
    } else {
      out = newF32([m, n], false); // beta 0: written in full
    }
    this.sgemm(
      out.data as Float32Array,
      f32(a, op, "a"),
      f32(b, op, "b"),
      m,
      n,
      k,
      transA,
      transB,
      opts.alpha ?? 1,
      beta,
    );
    return out;
  }

  /** y = x wᵀ + scale · (x aᵀ) bᵀ. */
  linear(x: Tensor, w: Tensor, lora?: LoraWeights): LinearResult {
    const op = "linear";
    const { n, inF, outF, la } = checkLinear(op, x, w, lora);
    // written in full by beta-0 products
    const y = newF32([n, outF], false);
    const xa = la === null ? null : newF32([n, la.rank], false);
    this.kernels.linearForward(
      this.sgemm,
      y.data as Float32Array,
      xa === null ? null : xa.data as Float32Array,
      f32(x, op, "x"),
      weight(w, op, "w"),
      la,
      n,
      inF,
      outF,
    );
    return xa === null ? { y } : { y, xa };
  }

  /** dx = dy w + scale · (dy b) a; da = scale · (dy b)ᵀ x; db = scale · dyᵀ (x aᵀ). */
  linearBackward(
    dy: Tensor,
    x: Tensor,
    w: Tensor,
    lora?: LoraWeights,
    xa?: Tensor,
  ): LinearGrads {
    const op = "linearBackward";
    const { n, inF, outF, la } = checkLinear(op, x, w, lora);
    expectShape(op, "dy", dy, [n, outF]);
    const dx = newF32([n, inF], false); // beta-0 product
    if (la === null) {
      this.kernels.linearBackward(
        this.sgemm,
        dx.data as Float32Array,
        null,
        null,
        f32(dy, op, "dy"),
        f32(x, op, "x"),
        weight(w, op, "w"),
        null,
        null,
        null,
        n,
        inF,
        outF,
      );
      return { dx };
    }
    let xaData: Float32Array;
    if (xa !== undefined) {
      expectShape(op, "xa", xa, [n, la.rank]);
      xaData = f32(xa, op, "xa");
    } else {
      // recompute x aᵀ when the forward's copy was not kept
      xaData = new Float32Array(n * la.rank);
      this.sgemm(
        xaData,
        f32(x, op, "x"),
        la.a,
        n,
        la.rank,
        inF,
        false,
        true,
        1,
        0,
      );
    }
    const da = newF32([la.rank, inF], false);
    const db = newF32([outF, la.rank], false);
    this.kernels.linearBackward(
      this.sgemm,
      dx.data as Float32Array,
      da.data as Float32Array,
      db.data as Float32Array,
      f32(dy, op, "dy"),
      f32(x, op, "x"),
      weight(w, op, "w"),
      la,
      xaData,
      new Float32Array(n * la.rank),
      n,
      inF,
      outF,
    );
    return { dx, da, db };
  }

  // ---- layers ---------------------------------------------------------------------

  /** RMSNorm over the last dimension. */
  rmsNorm(x: Tensor, w: Tensor, eps: number): { y: Tensor; rstd: Tensor } {
    const op = "rmsNorm";
    const [n, c] = dims2(x, op, "x");
    const g = normRows(op, n, c, w.shape);
    const y = newF32([n, c], false);
    const rstd = newF32([g.rows], false);
    this.kernels.rmsNormForward(
      y.data as Float32Array,
      rstd.data as Float32Array,
      f32(x, op, "x"),
      f32(w, op, "w"),
      eps,
      g.rows,
      g.width,
    );
    return { y, rstd };
  }

  /** dx [N,C] and dw [C]. */
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
    const [n, c] = dims2(x, op, "x");
    expectShape(op, "dy", dy, [n, c]);
    const g = normRows(op, n, c, w.shape);
    expectShape(op, "rstd", rstd, [g.rows]);
    const dx = newF32([n, c], false);
    const dw = newF32([g.width], false);
    this.kernels.rmsNormBackward(
      dx.data as Float32Array,
      dw.data as Float32Array,
      f32(dy, op, "dy"),
      f32(x, op, "x"),
      f32(w, op, "w"),
      f32(rstd, op, "rstd"),
      g.rows,
      g.width,
    );
    // dw comes out of the same pass over the rows; recycled when not wanted.
    if (opts.weightGrad !== false) return { dx, dw };
    this.free(dw);
    return { dx, dw: null };
  }

  /** Rotate-half RoPE (inverse: the backward). */
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
    const out = newF32(x.shape, false);
    this.kernels.ropeForward(
      out.data as Float32Array,
      f32(x, op, "x"),
      rows,
      dims,
      inverse,
    );
    return out;
  }

  /** Causal GQA attention; returns out and lse. */
  attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    dims: AttentionDims,
  ): { out: Tensor; lse: Tensor } {
    const op = "attention";
    const d = attnDimsOf(op, q.shape, k.shape, v.shape, dims);
    const out = newF32(q.shape);
    const lse = newF32([d.batch * d.heads * d.tq]);
    attentionForward(
      out.data as Float32Array,
      lse.data as Float32Array,
      f32(q, op, "q"),
      f32(k, op, "k"),
      f32(v, op, "v"),
      d,
    );
    return { out, lse };
  }

  /** dq, dk, dv of {@linkcode CpuBackend.attention}. */
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
    const d = attnDimsOf(op, q.shape, k.shape, v.shape, dims);
    expectShape(op, "dout", dout, q.shape);
    expectShape(op, "out", out, q.shape);
    expectShape(op, "lse", lse, [d.batch * d.heads * d.tq]);
    const dq = newF32(q.shape);
    const dk = newF32(k.shape);
    const dv = newF32(v.shape);
    attentionBackward(
      dq.data as Float32Array,
      dk.data as Float32Array,
      dv.data as Float32Array,
      f32(dout, op, "dout"),
      f32(q, op, "q"),
      f32(k, op, "k"),
      f32(v, op, "v"),
      f32(out, op, "out"),
      f32(lse, op, "lse"),
      d,
    );
    return { dq, dk, dv };
  }

  /** KV-cache append: src rows go to rows start … of each sequence of cache. */
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
    writeRowsForward(
      f32(cache, op, "cache"),
      f32(src, op, "src"),
      dims.batch,
      dims.rows,
      dims.start,
      n,
      c,
    );
  }

  /** h = silu(gate) · up. */
  swiglu(gate: Tensor, up: Tensor): Tensor {
    const op = "swiglu";
    sameShape(op, ["gate", gate], ["up", up]);
    const h = newF32(gate.shape, false);
    this.kernels.swigluForward(
      h.data as Float32Array,
      f32(gate, op, "gate"),
      f32(up, op, "up"),
      h.size,
    );
    return h;
  }

  /** dgate and dup of {@linkcode CpuBackend.swiglu}. */
  swigluBackward(
    dh: Tensor,
    gate: Tensor,
    up: Tensor,
  ): { dgate: Tensor; dup: Tensor } {
    const op = "swigluBackward";
    sameShape(op, ["dh", dh], ["gate", gate], ["up", up]);
    const dgate = newF32(gate.shape, false);
    const dup = newF32(gate.shape, false);
    this.kernels.swigluBackward(
      dgate.data as Float32Array,
      dup.data as Float32Array,
      f32(dh, op, "dh"),
      f32(gate, op, "gate"),
      f32(up, op, "up"),
      gate.size,
    );
    return { dgate, dup };
  }

  /** out[i] = table[ids[i]] → [N,C] with N = ids.size. */
  embedding(table: Tensor, ids: Tensor): Tensor {
    const op = "embedding";
    const [v, c] = dims2(table, op, "table");
    const idData = checkIds(op, "ids", ids, v);
    const out = newF32([idData.length, c]);
    embeddingForward(
      out.data as Float32Array,
      weight(table, op, "table"),
      idData,
      c,
    );
    return out;
  }

  /** Scatter-add of dy [N,C] into a new [vocab, C]. */
  embeddingBackward(dy: Tensor, ids: Tensor, vocab: number): Tensor {
    const op = "embeddingBackward";
    positiveInt(op, "vocab", vocab);
    const [n, c] = dims2(dy, op, "dy");
    const idData = checkIds(op, "ids", ids, vocab);
    if (idData.length !== n) {
      throw new ShapeError(
        op,
        `ids ${fmtShape(ids.shape)} has ${idData.length} ids but dy ${
          fmtShape(dy.shape)
        } has ${n} rows`,
      );
    }
    const dtable = newF32([vocab, c]);
    embeddingBackward(
      dtable.data as Float32Array,
      f32(dy, op, "dy"),
      idData,
      c,
    );
    return dtable;
  }

  // ---- losses -----------------------------------------------------------------------

  /** Log-softmax gathered at targets; also the row lse. */
  logSoftmaxGather(
    logits: Tensor,
    targets: Tensor,
  ): { logprobs: Tensor; lse: Tensor } {
    const op = "logSoftmaxGather";
    const [n, v] = dims2(logits, op, "logits");
    expectShape(op, "targets", targets, [n]);
    const t = checkIds(op, "targets", targets, v);
    const logprobs = newF32([n], false);
    const lse = newF32([n], false);
    this.kernels.logSoftmaxGatherForward(
      logprobs.data as Float32Array,
      lse.data as Float32Array,
      f32(logits, op, "logits"),
      t,
      n,
      v,
    );
    return { logprobs, lse };
  }

  /** dlogits = dlogprobs · (onehot(target) − softmax). */
  logSoftmaxGatherBackward(
    dlogprobs: Tensor,
    logits: Tensor,
    targets: Tensor,
    lse: Tensor,
  ): Tensor {
    const op = "logSoftmaxGatherBackward";
    const [n, v] = dims2(logits, op, "logits");
    expectShape(op, "targets", targets, [n]);
    expectShape(op, "dlogprobs", dlogprobs, [n]);
    expectShape(op, "lse", lse, [n]);
    const t = checkIds(op, "targets", targets, v);
    const dlogits = newF32([n, v], false);
    this.kernels.logSoftmaxGatherBackward(
      dlogits.data as Float32Array,
      f32(dlogprobs, op, "dlogprobs"),
      f32(logits, op, "logits"),
      t,
      f32(lse, op, "lse"),
      n,
      v,
    );
    return dlogits;
  }

  // ---- optimizer and sampling ------------------------------------------------------------

  /** One AdamW step over all params, in place (torch.optim.AdamW semantics). */
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
    for (let i = 0; i < params.length; i++) {
      sameShape(op, [`params[${i}]`, params[i]], [`grads[${i}]`, grads[i]], [
        `m[${i}]`,
        m[i],
      ], [`v[${i}]`, v[i]]);
      f32(params[i], op, `params[${i}]`);
      f32(grads[i], op, `grads[${i}]`);
      f32(m[i], op, `m[${i}]`);
      f32(v[i], op, `v[${i}]`);
    }
    for (let i = 0; i < params.length; i++) {
      adamwUpdate(
        f32(params[i], op, "params"),
        f32(grads[i], op, "grads"),
        f32(m[i], op, "m"),
        f32(v[i], op, "v"),
        step,
      );
    }
  }

  /** One token per row by inverse CDF (see sample.ts for the exact order). */
  sample(
    logits: Tensor,
    uniforms: Tensor,
    opts: SampleOptions,
  ): { tokens: Tensor; logprobs: Tensor } {
    const op = "sample";
    const [b, v] = dims2(logits, op, "logits");
    expectShape(op, "uniforms", uniforms, [b]);
    if (v < 1 || v > MAX_SAMPLE_VOCAB) {
      throw new ShapeError(
        op,
        `vocabulary must be in [1, ${MAX_SAMPLE_VOCAB}]: logits ${
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
    const u = f32(uniforms, op, "uniforms");
    for (let i = 0; i < u.length; i++) {
      if (!(u[i] >= 0 && u[i] < 1)) {
        throw new RangeError(
          `sample: uniforms[${i}] must be in [0, 1): got ${u[i]}`,
        );
      }
    }
    const tokens = new CpuTensor(new Int32Array(b), [b]);
    const logprobs = newF32([b]);
    sampleRows(
      tokens.data as Int32Array,
      logprobs.data as Float32Array,
      f32(logits, op, "logits"),
      u,
      b,
      v,
      opts,
    );
    return { tokens, logprobs };
  }

  /** Repetition penalty in place where `seen` is non-zero (see penalty.ts). */
  repetitionPenalty(logits: Tensor, seen: Tensor, penalty: number): void {
    const op = "repetitionPenalty";
    dims2(logits, op, "logits");
    expectShape(op, "seen", seen, logits.shape);
    if (!(penalty > 0) || !Number.isFinite(penalty)) {
      throw new RangeError(
        `${op}: penalty must be a finite number > 0: got ${penalty}`,
      );
    }
    penalizeSeen(f32(logits, op, "logits"), f32(seen, op, "seen"), penalty);
  }

  /** seen[b, tokens[b·n + i]] = 1, in place (see penalty.ts). */
  markTokens(seen: Tensor, tokens: Tensor): void {
    const op = "markTokens";
    const [b, v] = dims2(seen, op, "seen");
    const t = checkIds(op, "tokens", tokens, v);
    if (tokens.shape.length !== 1 || b === 0 || t.length % b !== 0) {
      throw new ShapeError(
        op,
        `tokens ${fmtShape(tokens.shape)} must be [B·n] for seen ${
          fmtShape(seen.shape)
        }`,
      );
    }
    markSeen(f32(seen, op, "seen"), t, b, v);
  }
}

// ---- checks ------------------------------------------------------------------------

/** Runs `fn` now; its result or its error becomes a settled promise. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Freed f32 arrays by length, reused by {@linkcode newF32}: a training step
 * allocates the same shapes again and again, and a fresh large typed array
 * costs page faults, zero-filling and garbage collection; a reused one only a
 * fill. Small arrays are not worth it. The pool is bounded by bytes, not by
 * count: a step frees many arrays of one shape at once (every layer's saved
 * activations after its backward), and with at most 16 per shape the LoRA
 * step of the benchmark model ran 25–40% slower.
 */
const pool = new Map<number, Float32Array[]>();
const POOL_MIN_LENGTH = 4096;
/**
 * Most bytes the pool keeps (freed arrays past it go to the collector): 4
 * GiB, so that a large vocabulary's logits and their gradient (each N×V:
 * 622 MB at 1,024 tokens of a 151,936-token vocabulary) and the step's
 * activations all come back the next step. At 1 GiB only one of the two
 * did, and writing the other's fresh pages cost about 1.2 s of a 17.4 s step
 * of the large benchmark model. What the pool holds is at most what the
 * last step had freed, so the peak does not grow.
 */
const POOL_MAX_BYTES = 2 ** 32;
let pooledBytes = 0;

/** Give a freed array back to the pool. */
function recycle(data: Float32Array | Int32Array | Uint16Array): void {
  if (!(data instanceof Float32Array) || data.length < POOL_MIN_LENGTH) return;
  // a view into a packed array is not the pool's to hand out
  if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) {
    return;
  }
  if (pooledBytes + data.byteLength > POOL_MAX_BYTES) return;
  pooledBytes += data.byteLength;
  const list = pool.get(data.length);
  if (!list) pool.set(data.length, [data]);
  else list.push(data);
}

/**
 * A new f32 tensor: zeros, or with `zero` false whatever a reused array holds
 * (for outputs the op writes in full: a pass over memory saved).
 */
function newF32(shape: readonly number[], zero = true): CpuTensor {
  let n = 1;
  for (const d of shape) n *= d;
  const reused = pool.get(n)?.pop();
  if (reused) {
    pooledBytes -= reused.byteLength;
    return new CpuTensor(zero ? reused.fill(0) : reused, shape);
  }
  return new CpuTensor(new Float32Array(n), shape);
}

function cpu(t: Tensor, op: string, name: string): CpuTensor {
  if (!(t instanceof CpuTensor)) {
    throw new ShapeError(op, `${name} is not a tensor of a CPU backend`);
  }
  if (t.freed) {
    throw new ShapeError(op, `${name} ${fmtShape(t.shape)} was freed`);
  }
  return t;
}

function f32(t: Tensor, op: string, name: string): Float32Array {
  const c = cpu(t, op, name);
  if (c.dtype !== "f32") {
    throw new ShapeError(
      op,
      `${name} must be f32: got ${c.dtype} ${fmtShape(c.shape)}`,
    );
  }
  return c.data as Float32Array;
}

/** A frozen weight's storage: f32, or 16-bit bits with their format. */
function weight(t: Tensor, op: string, name: string): WeightArray {
  const c = cpu(t, op, name);
  if (c.dtype === "f32") return c.data as Float32Array;
  if (c.dtype === "bf16" || c.dtype === "f16") {
    return { bits: c.data as Uint16Array, format: c.dtype };
  }
  throw new ShapeError(
    op,
    `${name} must be f32, bf16 or f16: got ${c.dtype} ${fmtShape(c.shape)}`,
  );
}

function i32(t: Tensor, op: string, name: string): Int32Array {
  const c = cpu(t, op, name);
  if (c.dtype !== "i32") {
    throw new ShapeError(
      op,
      `${name} must be i32: got ${c.dtype} ${fmtShape(c.shape)}`,
    );
  }
  return c.data as Int32Array;
}

function dims2(t: Tensor, op: string, name: string): [number, number] {
  if (t.shape.length !== 2) {
    throw new ShapeError(op, `${name} must be 2-D: got ${fmtShape(t.shape)}`);
  }
  return [t.shape[0], t.shape[1]];
}

function expectShape(
  op: string,
  name: string,
  t: Tensor,
  want: readonly number[],
): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(
      op,
      `${name} must be ${fmtShape(want)}: got ${fmtShape(t.shape)}`,
    );
  }
}

function sameShape(op: string, ...ts: [string, Tensor][]): void {
  const [n0, t0] = ts[0];
  for (const [n, t] of ts.slice(1)) {
    if (
      t.shape.length !== t0.shape.length ||
      t.shape.some((d, i) => d !== t0.shape[i])
    ) {
      throw new ShapeError(
        op,
        `${n} ${fmtShape(t.shape)} must have the shape of ${n0} ${
          fmtShape(t0.shape)
        }`,
      );
    }
  }
}

function positiveInt(op: string, name: string, x: number): void {
  if (!Number.isInteger(x) || x < 1) {
    throw new ShapeError(op, `${name} must be a positive integer: got ${x}`);
  }
}

function checkIds(
  op: string,
  name: string,
  ids: Tensor,
  limit: number,
): Int32Array {
  const d = i32(ids, op, name);
  for (let i = 0; i < d.length; i++) {
    if (d[i] < 0 || d[i] >= limit) {
      throw new RangeError(
        `${op}: ${name}[${i}] must be in [0, ${limit}): got ${d[i]}`,
      );
    }
  }
  return d;
}

function checkLinear(
  op: string,
  x: Tensor,
  w: Tensor,
  lora: LoraWeights | undefined,
): { n: number; inF: number; outF: number; la: LoraArrays | null } {
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
  if (lora === undefined) return { n, inF, outF, la: null };
  const [rank, aIn] = dims2(lora.a, op, "lora.a");
  if (aIn !== inF) {
    throw new ShapeError(
      op,
      `lora.a must be [R, ${inF}]: got ${fmtShape(lora.a.shape)}`,
    );
  }
  expectShape(op, "lora.b", lora.b, [outF, rank]);
  return {
    n,
    inF,
    outF,
    la: {
      a: f32(lora.a, op, "lora.a"),
      b: f32(lora.b, op, "lora.b"),
      rank,
      scale: lora.scale,
    },
  };
}
