/**
 * The native backend: the CPU reference backend with every matrix product
 * (gemm, linear, linearBackward, and the per-head products of attention and
 * its backward) run by OpenBLAS's `cblas_sgemm` (LoRA folded into the weight
 * for large batches: linear.ts), and SwiGLU, RMSNorm, RoPE,
 * log-softmax and attention's softmax in WebAssembly SIMD (simd_kernels.ts).
 * All other ops are the CPU backend's.
 *
 * @module
 */

import type { AttentionDims, Tensor } from "../backend.ts";
import { attnDimsOf } from "../cpu/attention.ts";
import { CpuBackend } from "../cpu/backend.ts";
import type { HostKernels } from "../cpu/host_kernels.ts";
import { fmtShape, ShapeError } from "../cpu/shape_error.ts";
import { attentionBackwardBlas, attentionForwardBlas } from "./attention.ts";
import { linearBackwardFolded, linearForwardFolded } from "./linear.ts";
import {
  logSoftmaxGatherBackwardSimd,
  logSoftmaxGatherSimd,
} from "./log_softmax.ts";
import { SimdKernels } from "./simd_kernels.ts";
import {
  loadOpenBlas,
  type OpenBlas,
  OPENBLAS_PATHS,
  type StridedGemmFn,
} from "./openblas.ts";

/**
 * {@linkcode CpuBackend} with OpenBLAS matrix products (name "native").
 * Made by {@linkcode openNativeBackend}.
 */
export class NativeBackend extends CpuBackend {
  /** "native" */
  override readonly name: string = "native";
  /** The OpenBLAS build in use. */
  override readonly device: string;

  /** sgemm on strided sub-matrices (attention's per-head products). */
  readonly #gemmStrided: StridedGemmFn;
  /** Attention's kernels (score tiles kept in their memory). */
  readonly #attnSimd = new SimdKernels();

  /** Prefer {@linkcode openNativeBackend}, which finds OpenBLAS. */
  constructor(blas: OpenBlas) {
    super(blas.gemm, Math.exp, simdHostKernels(new SimdKernels()));
    this.device = blas.description;
    this.#gemmStrided = blas.gemmStrided;
  }

  /** Causal GQA attention with per-head sgemm products; returns out and lse. */
  override attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    dims: AttentionDims,
  ): { out: Tensor; lse: Tensor } {
    const op = "attention";
    const d = attnDimsOf(op, q.shape, k.shape, v.shape, dims);
    // every row of out and lse is written
    const out = this.uninitialized(q.shape);
    const lse = this.uninitialized([d.batch * d.heads * d.tq]);
    attentionForwardBlas(
      this.#gemmStrided,
      this.#attnSimd,
      this.f32View(out),
      this.f32View(lse),
      this.#f32(op, "q", q),
      this.#f32(op, "k", k),
      this.#f32(op, "v", v),
      d,
    );
    return { out, lse };
  }

  /** dq, dk, dv of {@linkcode NativeBackend.attention}. */
  override attentionBackward(
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
    sameShapeAs(op, "dout", dout, q.shape);
    sameShapeAs(op, "out", out, q.shape);
    sameShapeAs(op, "lse", lse, [d.batch * d.heads * d.tq]);
    const dq = this.uninitialized(q.shape); // beta-0 products
    const dk = this.zeros(k.shape); // accumulated into: must start at 0
    const dv = this.zeros(v.shape);
    attentionBackwardBlas(
      this.#gemmStrided,
      this.#attnSimd,
      this.f32View(dq),
      this.f32View(dk),
      this.f32View(dv),
      this.#f32(op, "dout", dout),
      this.#f32(op, "q", q),
      this.#f32(op, "k", k),
      this.#f32(op, "v", v),
      this.#f32(op, "out", out),
      this.#f32(op, "lse", lse),
      d,
    );
    return { dq, dk, dv };
  }

  /** The storage of an f32 input of `op`; a ShapeError names it otherwise. */
  #f32(op: string, name: string, t: Tensor): Float32Array {
    if (t.dtype !== "f32") {
      throw new ShapeError(
        op,
        `${name} must be f32: got ${t.dtype} ${fmtShape(t.shape)}`,
      );
    }
    return this.f32View(t);
  }
}

/** The layer loops done by `simd` (the rest stay the reference's). */
function simdHostKernels(simd: SimdKernels): Partial<HostKernels> {
  return {
    swigluForward: (h, gate, up, n) => simd.swigluForward(h, gate, up, n),
    swigluBackward: (dgate, dup, dh, gate, up, n) =>
      simd.swigluBackward(dgate, dup, dh, gate, up, n),
    linearForward: linearForwardFolded,
    linearBackward: linearBackwardFolded,
    rmsNormForward: (y, rstd, x, w, eps, n, c) =>
      simd.rmsNormForward(y, rstd, x, w, eps, n, c),
    rmsNormBackward: (dx, dw, dy, x, w, rstd, n, c) =>
      simd.rmsNormBackward(dx, dw, dy, x, w, rstd, n, c),
    ropeForward: (out, x, rows, dims, inverse) =>
      simd.rope(out, x, rows, dims, inverse),
    logSoftmaxGatherForward: (logprobs, lse, logits, targets, n, v) =>
      logSoftmaxGatherSimd(simd, logprobs, lse, logits, targets, n, v),
    logSoftmaxGatherBackward: (
      dlogits,
      dlogprobs,
      logits,
      targets,
      lse,
      n,
      v,
    ) =>
      logSoftmaxGatherBackwardSimd(
        simd,
        dlogits,
        dlogprobs,
        logits,
        targets,
        lse,
        n,
        v,
      ),
  };
}

function sameShapeAs(
  op: string,
  name: string,
  t: Tensor,
  want: readonly number[],
): void {
  if (t.shape.length !== want.length || t.shape.some((x, i) => x !== want[i])) {
    throw new ShapeError(
      op,
      `${name} must be ${fmtShape(want)}: got ${fmtShape(t.shape)}`,
    );
  }
}

/** Where to look for OpenBLAS. */
export interface NativeOptions {
  /** Library names or paths, tried in order. @default {OPENBLAS_PATHS} */
  paths?: readonly string[];
}

/**
 * The native backend, or null when OpenBLAS cannot be loaded (see
 * {@linkcode nativeUnavailableReason}).
 *
 * @example
 * ```ts
 * import { nativeUnavailableReason, openNativeBackend } from "./backend.ts";
 * const be = openNativeBackend();
 * console.log(be?.device ?? nativeUnavailableReason());
 * ```
 */
export function openNativeBackend(
  opts: NativeOptions = {},
): NativeBackend | null {
  const got = loadOpenBlas(opts.paths ?? OPENBLAS_PATHS);
  return got.ok ? new NativeBackend(got.blas) : null;
}

/**
 * One line saying why {@linkcode openNativeBackend} gives null (naming the
 * package `libopenblas0-pthread`), or null when it is available.
 */
export function nativeUnavailableReason(
  opts: NativeOptions = {},
): string | null {
  const got = loadOpenBlas(opts.paths ?? OPENBLAS_PATHS);
  return got.ok ? null : got.reason;
}
