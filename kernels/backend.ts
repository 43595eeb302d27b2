/**
 * The compute contract every backend implements (`cpu/`, `native/`, `webgpu/`).
 *
 * Shape legend used throughout: N rows (batch × time, flattened), C model width,
 * F MLP width, V vocabulary, R LoRA rank, H query heads, G key/value heads,
 * D head dimension, B batch, T sequence length.
 *
 * Tensors are dense, row-major, and live wherever the backend keeps them (host
 * memory for `cpu`, GPU buffers for `webgpu`). Every op records work and returns
 * new tensors at once; only `read`/`readInts`/`sumOfSquares` wait for results.
 * Reductions run in a fixed order, so the same inputs give bit-identical outputs
 * on the same backend.
 *
 * @module
 */

import type { HalfBits, HalfFormat } from "./half.ts";
import type { RopeScaling } from "./rope_freq.ts";
/**
 * Element type of a tensor: 32-bit floats, 32-bit signed integers (token
 * ids), or a 16-bit float format (frozen base weights only: see
 * {@linkcode Backend.fromHalf}).
 */
export type DType = "f32" | "i32" | HalfFormat;

/**
 * A tensor handle owned by one backend. Its data is reached only through the
 * backend that made it.
 */
export interface Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements (product of `shape`). */
  readonly size: number;
}

/** Options of {@linkcode Backend.gemm}: `out = alpha · op(a) · op(b) + beta · out`. */
export interface GemmOptions {
  /** Use aᵀ: a is stored [K,M]. @default {false} */
  transA?: boolean;
  /** Use bᵀ: b is stored [N,K]. @default {false} */
  transB?: boolean;
  /** Scale of the product. @default {1} */
  alpha?: number;
  /** Scale of the existing `out` (only with `out`). @default {0} */
  beta?: number;
  /** Write into this [M,N] tensor instead of a new one. */
  out?: Tensor;
}

/** A LoRA adapter on one linear layer: `y += scale · (x Aᵀ) Bᵀ`. */
export interface LoraWeights {
  /** [R, in] */
  a: Tensor;
  /** [out, R] */
  b: Tensor;
  /** alpha / rank */
  scale: number;
}

/** Result of {@linkcode Backend.linear}. */
export interface LinearResult {
  /** [N, out] */
  y: Tensor;
  /** [N, R]: x Aᵀ, kept for the backward pass (absent without LoRA). */
  xa?: Tensor;
}

/** Gradients from {@linkcode Backend.linearBackward}. */
export interface LinearGrads {
  /** [N, in] */
  dx: Tensor;
  /** [R, in] (only with LoRA) */
  da?: Tensor;
  /** [out, R] (only with LoRA) */
  db?: Tensor;
}

/** Dimensions of {@linkcode Backend.attention}. */
export interface AttentionDims {
  /** Number of independent sequences B. */
  batch: number;
  /** Query rows per sequence Tq. */
  tq: number;
  /** Valid key rows per sequence Tk (Tk ≥ Tq). */
  tk: number;
  /** Rows per sequence in k and v as stored (≥ Tk; a KV cache's capacity). @default {tk} */
  kvRows?: number;
  /** Query heads H. */
  heads: number;
  /** Key/value heads G (H is a multiple of G: grouped-query attention). */
  kvHeads: number;
  /** Head dimension D. */
  headDim: number;
}

/** Sampling controls of {@linkcode Backend.sample}, per the anchor's SamplingParams. */
export interface SampleOptions {
  /** 0 means greedy (argmax). */
  temperature: number;
  /** Keep the k most likely tokens; -1 keeps all. */
  topK: number;
  /** Keep the smallest set whose probability reaches p; 1 keeps all. */
  topP: number;
  /**
   * Then keep only the tokens whose (tempered) probability is at least
   * `minP` times the most likely token's, in [0, 1]; 0 keeps all.
   * @default {0}
   */
  minP?: number;
}

/** AdamW hyper-parameters for one step of {@linkcode Backend.adamw} (torch AdamW semantics). */
export interface AdamStep {
  /** Learning rate. */
  lr: number;
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Denominator epsilon. */
  eps: number;
  /** Decoupled weight decay: `p -= lr · weightDecay · p`. */
  weightDecay: number;
  /** 1-based step number, for bias correction. */
  step: number;
  /** Multiplies every gradient first (gradient clipping); 1 leaves them as they are. */
  gradScale: number;
}

/**
 * The compute backend. The model code in `model/` calls only these methods.
 *
 * @example Matrix product on the CPU reference backend
 * ```ts
 * import { CpuBackend } from "./cpu/backend.ts";
 * const be = new CpuBackend();
 * const a = be.fromArray(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * const c = be.gemm(a, a);
 * console.log(await be.read(c)); // [7, 10, 15, 22]
 * ```
 */
export interface Backend {
  /** Short name: "cpu", "native" or "webgpu". */
  readonly name: string;
  /** Human description of the device in use (adapter name, BLAS library). */
  readonly device: string;

  // ---- memory ----------------------------------------------------------------
  /** Upload f32 data as a tensor of `shape` (the data is copied). */
  fromArray(data: Float32Array, shape: readonly number[]): Tensor;
  /** Upload i32 data (token ids, targets) as a tensor of `shape`. */
  fromInts(data: Int32Array, shape: readonly number[]): Tensor;
  /**
   * Upload a frozen base weight kept in 16 bits (bf16 or f16). `src.bits`
   * must not change afterwards: a host backend keeps it as the tensor's
   * data, with no copy (a GPU backend uploads it). Such a tensor is
   * read-only and is accepted in exactly three
   * places: as the weight `w` of {@linkcode Backend.linear} and
   * {@linkcode Backend.linearBackward}, and as the table of
   * {@linkcode Backend.embedding}; the op computes in f32 from it (each
   * element widened exactly), so a model loaded in 16 bits gives the same
   * results as the same 16-bit values loaded as f32.
   *
   * @example
   * ```ts ignore
   * const w = be.fromHalf(narrowToHalf(data, "bf16"), [out, inF]);
   * const { y } = be.linear(x, w);
   * ```
   */
  fromHalf(src: HalfBits, shape: readonly number[]): Tensor;
  /** A new f32 tensor of zeros. */
  zeros(shape: readonly number[]): Tensor;
  /**
   * New f32 tensors of zeros, one per shape, stored side by side (on webgpu,
   * views into one buffer), so that an op given all of them in this order —
   * {@linkcode Backend.adamw}, {@linkcode Backend.sumOfSquares} — covers them
   * in one dispatch. Each is used and freed like any tensor.
   *
   * @example
   * ```ts ignore
   * const [a, b] = be.zerosPacked([[16, 256], [256, 16]]);
   * ```
   */
  zerosPacked(shapes: readonly (readonly number[])[]): Tensor[];
  /** Overwrite an f32 tensor in place with host data of the same length. */
  write(t: Tensor, data: Float32Array): void;
  /** Set every element of an f32 tensor to zero, in place. */
  zero(t: Tensor): void;
  /** `dst ← src` in place (f32, same shapes), on the device. */
  copy(dst: Tensor, src: Tensor): void;
  /** Copy an f32 tensor back to the host. */
  read(t: Tensor): Promise<Float32Array>;
  /** Copy several f32 tensors back to the host at once (one GPU wait on webgpu). */
  readMany(ts: readonly Tensor[]): Promise<Float32Array[]>;
  /** Copy an i32 tensor back to the host. */
  readInts(t: Tensor): Promise<Int32Array>;
  /**
   * Copy i32 and f32 tensors back to the host at once (one GPU wait on
   * webgpu), e.g. the tokens and logprobs of several sampling steps.
   */
  readMixed(
    ints: readonly Tensor[],
    floats: readonly Tensor[],
  ): Promise<{ ints: Int32Array[]; floats: Float32Array[] }>;
  /** Release a tensor's memory; the handle must not be used again. */
  free(t: Tensor): void;
  /** Wait until all recorded work is done (a no-op on synchronous backends). */
  sync(): Promise<void>;

  // ---- elementwise -------------------------------------------------------------
  /** `out += alpha · x` in place (same shapes). */
  axpy(out: Tensor, x: Tensor, alpha: number): void;
  /** `a + b` (same shapes), as a new tensor. */
  add(a: Tensor, b: Tensor): Tensor;
  /** `a ⊙ b`, the elementwise product (same shapes), as a new tensor. */
  mul(a: Tensor, b: Tensor): Tensor;
  /** Σ over all tensors of Σ x² (in a fixed order), read back to the host. */
  sumOfSquares(ts: readonly Tensor[]): Promise<number>;
  /**
   * The same sum as a new [1] tensor, recorded with no wait: read it later
   * together with other results (e.g. by {@linkcode Backend.readMany}).
   */
  sumOfSquaresTensor(ts: readonly Tensor[]): Tensor;

  // ---- linear algebra -------------------------------------------------------------
  /** General matrix product on 2-D tensors; see {@linkcode GemmOptions}. */
  gemm(a: Tensor, b: Tensor, opts?: GemmOptions): Tensor;
  /**
   * Linear layer with an optional LoRA adapter:
   * `y = x Wᵀ + scale · (x Aᵀ) Bᵀ`; x [N,in], W [out,in].
   */
  linear(x: Tensor, w: Tensor, lora?: LoraWeights): LinearResult;
  /**
   * Backward of {@linkcode Backend.linear}: dx = dy W + scale · (dy B) A;
   * dA = scale · (dy B)ᵀ x; dB = scale · dyᵀ (x Aᵀ). W is frozen (no dW).
   */
  linearBackward(
    dy: Tensor,
    x: Tensor,
    w: Tensor,
    lora?: LoraWeights,
    xa?: Tensor,
  ): LinearGrads;

  // ---- layers ---------------------------------------------------------------------
  /** RMSNorm: y = x / sqrt(mean(x²) + eps) · w; x [N,C], w [C]; also returns rstd [N]. */
  rmsNorm(x: Tensor, w: Tensor, eps: number): { y: Tensor; rstd: Tensor };
  /**
   * Backward of {@linkcode Backend.rmsNorm}: dx [N,C] and dw [C]; dw is null
   * when `opts.weightGrad` is false (a frozen norm, as under LoRA), and a
   * backend may then skip computing it.
   */
  rmsNormBackward(
    dy: Tensor,
    x: Tensor,
    w: Tensor,
    rstd: Tensor,
  ): { dx: Tensor; dw: Tensor };
  /** Backward of a frozen {@linkcode Backend.rmsNorm}: dx [N,C] alone. */
  rmsNormBackward(
    dy: Tensor,
    x: Tensor,
    w: Tensor,
    rstd: Tensor,
    opts: { weightGrad: false },
  ): { dx: Tensor; dw: null };
  /**
   * Rotary position embedding in Hugging Face's rotate-half layout on x [B·T, heads·D]:
   * row r sits at position `offset + (r mod T)`; pairs are (i, i + D/2) with
   * frequency theta^(-2i/D). `inverse` rotates the other way, which is the backward.
   */
  rope(
    x: Tensor,
    dims: {
      seqLen: number;
      heads: number;
      headDim: number;
      offset: number;
      theta: number;
      /** Llama 3's frequency scaling (`kernels/rope_freq.ts`), when the model has it. */
      scaling?: RopeScaling;
    },
    inverse?: boolean,
  ): Tensor;
  /**
   * Causal scaled-dot-product attention with grouped-query heads.
   * q [B·Tq, H·D]; k, v [B·kvRows, G·D]; query i of a sequence sits at position
   * Tk − Tq + i and attends keys 0..that position. Returns out [B·Tq, H·D] and the
   * log-sum-exp of each score row, lse [B·H·Tq], for the backward.
   */
  attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    dims: AttentionDims,
  ): { out: Tensor; lse: Tensor };
  /** Backward of {@linkcode Backend.attention}: dq, dk, dv shaped as q, k, v. */
  attentionBackward(
    dout: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    dims: AttentionDims,
  ): { dq: Tensor; dk: Tensor; dv: Tensor };
  /**
   * Copy `src` [B·n, C] into rows `start..start+n` of each sequence of `cache`
   * [B·rows, C] (the KV cache append), in place.
   */
  writeRows(
    cache: Tensor,
    src: Tensor,
    dims: { batch: number; rows: number; start: number },
  ): void;
  /** SwiGLU: h = silu(gate) · up; gate, up [N,F]. */
  swiglu(gate: Tensor, up: Tensor): Tensor;
  /** Backward of {@linkcode Backend.swiglu}. */
  swigluBackward(
    dh: Tensor,
    gate: Tensor,
    up: Tensor,
  ): { dgate: Tensor; dup: Tensor };
  /** Row gather: out[i] = table[ids[i]]; table [V,C], ids i32 [N] → [N,C]. */
  embedding(table: Tensor, ids: Tensor): Tensor;
  /** Backward of {@linkcode Backend.embedding}: scatter-add dy [N,C] into a new [V,C]. */
  embeddingBackward(dy: Tensor, ids: Tensor, vocab: number): Tensor;

  // ---- losses -----------------------------------------------------------------------
  /**
   * Log-softmax of each row of logits [N,V], gathered at targets (i32 [N]):
   * logprobs [N], plus the row log-sum-exp lse [N] for the backward.
   */
  logSoftmaxGather(
    logits: Tensor,
    targets: Tensor,
  ): { logprobs: Tensor; lse: Tensor };
  /**
   * Backward of {@linkcode Backend.logSoftmaxGather}: given d loss / d logprobs [N],
   * returns d loss / d logits [N,V] = dlp · (onehot(target) − softmax).
   * Cross-entropy with per-token weights w is `dlogprobs = −w`.
   */
  logSoftmaxGatherBackward(
    dlogprobs: Tensor,
    logits: Tensor,
    targets: Tensor,
    lse: Tensor,
  ): Tensor;

  // ---- optimizer and sampling ------------------------------------------------------------
  /**
   * One AdamW step over many parameter tensors at once, in place:
   * g' = gradScale·g; m = β1 m + (1−β1) g'; v = β2 v + (1−β2) g'²;
   * p -= lr·weightDecay·p; p -= lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps).
   */
  adamw(
    params: readonly Tensor[],
    grads: readonly Tensor[],
    m: readonly Tensor[],
    v: readonly Tensor[],
    step: AdamStep,
  ): void;
  /**
   * Draw one token per row of logits [B,V] using `uniforms` (f32 [B], each in [0,1)).
   * Returns tokens (i32 [B]) and their log-probabilities under the distribution
   * actually sampled from (temperature, then top-k, top-p and min-p applied;
   * for temperature 0, the untempered log-probability of the argmax under
   * the logits given).
   */
  sample(
    logits: Tensor,
    uniforms: Tensor,
    opts: SampleOptions,
  ): { tokens: Tensor; logprobs: Tensor };
  /**
   * Repetition penalty on logits [B,V], in place (transformers'
   * `RepetitionPenaltyLogitsProcessor`): where `seen` [B,V] (f32) is non-zero,
   * a logit x becomes x · penalty if x < 0, else x / penalty (in f32, with
   * the penalty rounded to f32); elsewhere it is left as it is. `penalty` is
   * a finite number > 0.
   */
  repetitionPenalty(logits: Tensor, seen: Tensor, penalty: number): void;
  /**
   * Mark tokens as seen, in place: for tokens (i32 [B·n], n per row, row
   * by row) sets seen[b, tokens[b·n + i]] = 1 in seen [B,V] (f32), e.g. a
   * prompt's ids (n = T) or the tokens one sampling step drew (n = 1), so
   * that sampled ids never leave the device. Ids outside [0, V) are refused
   * where the backend can check them (cpu) and skipped otherwise.
   */
  markTokens(seen: Tensor, tokens: Tensor): void;
}

/** Number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
