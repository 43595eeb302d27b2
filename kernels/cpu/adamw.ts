/**
 * One AdamW step on one parameter array, in place, following
 * `torch.optim.AdamW` (single-tensor path) operation by operation:
 *
 *   g  = gradScale · grad
 *   p  = p · (1 − lr · weightDecay)             decoupled weight decay, first
 *   m  = m + (1 − β1) (g − m)                   torch's lerp, = β1 m + (1 − β1) g
 *   v  = β2 v + (1 − β2) g²
 *   denom = sqrt(v) / sqrt(1 − β2ᵗ) + eps
 *   p  = p − (lr / (1 − β1ᵗ)) · m / denom
 *
 * Shapes: p, grad, m, v [n]. Each line is computed in float64 and stored as f32.
 *
 * @module
 */

/** AdamW hyper-parameters (the fields of backend.ts's AdamStep). */
export interface AdamHyper {
  /** Learning rate. */
  lr: number;
  /** First-moment decay β1. */
  beta1: number;
  /** Second-moment decay β2. */
  beta2: number;
  /** Denominator epsilon. */
  eps: number;
  /** Decoupled weight decay. */
  weightDecay: number;
  /** 1-based step t. */
  step: number;
  /** Multiplies every gradient first. */
  gradScale: number;
}

/** Updates p, m, v in place from grad. */
export function adamwUpdate(
  p: Float32Array,
  grad: Float32Array,
  m: Float32Array,
  v: Float32Array,
  h: AdamHyper,
): void {
  const decay = 1 - h.lr * h.weightDecay;
  const stepSize = h.lr / (1 - Math.pow(h.beta1, h.step));
  const bc2Sqrt = Math.sqrt(1 - Math.pow(h.beta2, h.step));
  for (let i = 0; i < p.length; i++) {
    const g = h.gradScale * grad[i];
    p[i] = p[i] * decay;
    m[i] = m[i] + (1 - h.beta1) * (g - m[i]);
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    const denom = Math.sqrt(v[i]) / bc2Sqrt + h.eps;
    p[i] = p[i] - (stepSize * m[i]) / denom;
  }
}
