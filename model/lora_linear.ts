/**
 * A linear layer with its LoRA adapter, including PEFT's dropout on the
 * adapter's input during training:
 *
 *   y = x Wᵀ + s · (drop(x) Aᵀ) Bᵀ,   drop(x) = x ⊙ m,  m ∈ {0, 1/(1−p)}
 *
 * Without dropout (p = 0, evaluation, sampling) this is `Backend.linear`,
 * whose LoRA product a backend may fuse into the base matmul. The mask of
 * each module comes from a PRNG seeded by (adapter seed, module path, the
 * trainer's dropout key), so a replayed micro-batch draws the same mask.
 *
 * @module
 */
import type { Backend, LinearResult, Tensor } from "../kernels/backend.ts";
import { hashSeed, type LoraSet } from "./lora.ts";
import { Prng } from "./prng.ts";

/** A linear layer's forward result, with what its backward needs. */
export interface LoraLinearResult extends LinearResult {
  /** The dropped-out input x ⊙ m (dropout only). */
  xd?: Tensor;
  /** The dropout mask m (dropout only). */
  mask?: Tensor;
}

/**
 * Forward of module `path`: `dropoutKey` set means training with the
 * adapter's dropout; undefined means no dropout.
 */
export function loraLinear(
  be: Backend,
  x: Tensor,
  w: Tensor,
  lora: LoraSet | undefined,
  path: string,
  dropoutKey?: number,
): LoraLinearResult {
  const ad = lora?.weights(path);
  const p = lora?.spec.dropout ?? 0;
  if (!ad || p === 0 || dropoutKey === undefined) return be.linear(x, w, ad);
  const [n, inp] = x.shape;
  const rng = new Prng(hashSeed(lora!.spec.seed ^ dropoutKey, path));
  const m = new Float32Array(n * inp);
  const keep = 1 / (1 - p);
  for (let i = 0; i < m.length; i++) m[i] = rng.nextFloat() < p ? 0 : keep;
  const mask = be.fromArray(m, [n, inp]);
  const xd = be.mul(x, mask);
  const { y } = be.linear(x, w);
  const xa = be.gemm(xd, ad.a, { transB: true }); // [N,in]·[R,in]ᵀ → [N,R]
  be.gemm(xa, ad.b, { transB: true, alpha: ad.scale, beta: 1, out: y }); // y += s·xa Bᵀ
  return { y, xa, xd, mask };
}

/**
 * Backward of {@linkcode loraLinear}: dx, and dA, dB when adapted.
 * With dropout: dA = s (dy B)ᵀ (x ⊙ m); dB = s dyᵀ xa; dx = dy W + (s (dy B) A) ⊙ m.
 */
export function loraLinearBackward(
  be: Backend,
  dy: Tensor,
  x: Tensor,
  w: Tensor,
  lora: LoraSet | undefined,
  path: string,
  fwd: LoraLinearResult,
): { dx: Tensor; da?: Tensor; db?: Tensor } {
  const ad = lora?.weights(path);
  if (!ad || !fwd.mask || !fwd.xd) {
    return be.linearBackward(dy, x, w, ad, fwd.xa);
  }
  const base = be.linearBackward(dy, x, w);
  const dyB = be.gemm(dy, ad.b); // [N,out]·[out,R] → [N,R]
  const da = be.gemm(dyB, fwd.xd, { transA: true, alpha: ad.scale }); // [R,in]
  const db = be.gemm(dy, fwd.xa!, { transA: true, alpha: ad.scale }); // [out,R]
  const dxd = be.gemm(dyB, ad.a, { alpha: ad.scale }); // [N,in]
  const dxl = be.mul(dxd, fwd.mask);
  const dx = be.add(base.dx, dxl);
  for (const t of [base.dx, dyB, dxd, dxl]) be.free(t);
  return { dx, da, db };
}

/** Free a forward result's tensors (all but y when `keepY`). */
export function freeLinear(
  be: Backend,
  r: LoraLinearResult | undefined,
  keepY = false,
): void {
  if (!r) return;
  if (!keepY) be.free(r.y);
  for (const t of [r.xa, r.xd, r.mask]) if (t) be.free(t);
}
