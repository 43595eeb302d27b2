/**
 * The anchor's built-in losses, per token, on target log-probabilities.
 *
 * Every loss is a SUM over tokens (and datums), never a mean. Each returns the
 * scalar loss and dL/dlogprobs per token, which the last pipeline stage turns
 * into dL/dlogits. Notation: lp = log p_θ(target), q = the sampler's logprobs,
 * A = advantages, ratio = exp(lp − q).
 *
 * @module
 */

/** Loss function names, as the anchor spells them. */
export const LOSS_FNS = [
  "cross_entropy",
  "importance_sampling",
  "ppo",
  "cispo",
  "dro",
] as const;

/** One loss function name. */
export type LossFnName = typeof LOSS_FNS[number];

/** Per-token inputs of a loss, flattened over all datums (length N each). */
export interface LossInputs {
  /** Target log-probabilities under the current weights. */
  logprobs: Float32Array;
  /** Per-token weights (cross_entropy), or an optional mask for the RL losses. */
  weights?: Float32Array;
  /** Per-token advantages (RL losses). */
  advantages?: Float32Array;
  /** The sampler's log-probabilities q (RL losses). */
  samplingLogprobs?: Float32Array;
  /** Per-token clip thresholds (ppo, cispo), overriding the config. */
  clipLow?: Float32Array;
  /** Per-token clip thresholds (ppo, cispo), overriding the config. */
  clipHigh?: Float32Array;
}

/** Result of {@linkcode computeLoss}. */
export interface LossResult {
  /** Σ over tokens of the per-token loss. */
  loss: number;
  /** dL/dlogprobs per token. */
  dlogprobs: Float32Array;
}

/** Default clip thresholds (CB tutorial 202): ppo 0.8/1.2; cispo one-sided 0/4. */
const CLIP_DEFAULTS = { ppo: [0.8, 1.2], cispo: [0.0, 4.0] } as const;

/**
 * Compute a loss and its gradient with respect to each token's logprob.
 * Accumulates in f64 in token order, so the result is deterministic.
 *
 * @example
 * ```ts
 * const r = computeLoss("cross_entropy", {
 *   logprobs: new Float32Array([-1, -2]),
 *   weights: new Float32Array([1, 0.5]),
 * });
 * // r.loss === 2; r.dlogprobs = [-1, -0.5]
 * ```
 */
export function computeLoss(
  fn: LossFnName,
  inp: LossInputs,
  config: Record<string, number> = {},
): LossResult {
  const n = inp.logprobs.length;
  const lp = inp.logprobs;
  const d = new Float32Array(n);
  const mask = (i: number): number => (inp.weights ? inp.weights[i] : 1);
  let loss = 0;
  if (fn === "cross_entropy") {
    const w = need(inp.weights, "weights");
    for (let i = 0; i < n; i++) {
      loss -= lp[i] * w[i];
      d[i] = -w[i];
    }
    return { loss, dlogprobs: d };
  }
  const adv = need(inp.advantages, "advantages");
  const q = need(inp.samplingLogprobs, "logprobs");
  if (fn === "importance_sampling") {
    for (let i = 0; i < n; i++) {
      const r = Math.exp(lp[i] - q[i]);
      loss -= mask(i) * r * adv[i];
      d[i] = -mask(i) * r * adv[i];
    }
  } else if (fn === "ppo" || fn === "cispo") {
    const [dlo, dhi] = CLIP_DEFAULTS[fn];
    const lo0 = config.clip_low_threshold ?? config.clipLowThreshold ?? dlo;
    const hi0 = config.clip_high_threshold ?? config.clipHighThreshold ?? dhi;
    for (let i = 0; i < n; i++) {
      const lo = inp.clipLow ? inp.clipLow[i] : lo0;
      const hi = inp.clipHigh ? inp.clipHigh[i] : hi0;
      const r = Math.exp(lp[i] - q[i]);
      const c = Math.min(Math.max(r, lo), hi);
      if (fn === "ppo") {
        // loss = −min(r·A, clamp(r)·A); d(r)/d(lp) = r, and clamp passes it only inside (lo, hi).
        const unclipped = r * adv[i], clipped = c * adv[i];
        if (unclipped <= clipped) {
          loss -= mask(i) * unclipped;
          d[i] = -mask(i) * r * adv[i];
        } else {
          loss -= mask(i) * clipped;
          d[i] = r > lo && r < hi ? -mask(i) * r * adv[i] : 0;
        }
      } else {
        // loss = −stopgrad(clamp(r)) · lp · A
        loss -= mask(i) * c * lp[i] * adv[i];
        d[i] = -mask(i) * c * adv[i];
      }
    }
  } else if (fn === "dro") {
    const beta = config.beta;
    if (beta === undefined || !Number.isFinite(beta)) {
      throw new Error("lossFnConfig.beta is required for dro");
    }
    // loss = −(lp·A − ½β(lp − q)²)
    for (let i = 0; i < n; i++) {
      const diff = lp[i] - q[i];
      loss -= mask(i) * (lp[i] * adv[i] - 0.5 * beta * diff * diff);
      d[i] = -mask(i) * (adv[i] - beta * diff);
    }
  } else {
    throw new Error(`unknown loss function ${fn}`);
  }
  return { loss, dlogprobs: d };
}

function need(a: Float32Array | undefined, name: string): Float32Array {
  if (!a) throw new Error(`lossFnInputs.${name} is required`);
  return a;
}
