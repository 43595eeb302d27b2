/**
 * Log-softmax of each logit row, gathered at a target token.
 *
 * Shapes: logits, dlogits [N,V]; targets [N] (i32, in 0 … V−1; checked by the
 * caller); logprobs, lse, dlogprobs [N].
 *
 * lse = max + log Σ_v exp(logit_v − max), summed over v = 0 … V−1 in float64;
 * logprob = logit_target − lse.
 *
 * @module
 */

/** Fills logprobs and lse. */
export function logSoftmaxGatherForward(
  logprobs: Float32Array,
  lse: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  n: number,
  v: number,
): void {
  for (let i = 0; i < n; i++) {
    const o = i * v;
    let max = -Infinity;
    for (let j = 0; j < v; j++) if (logits[o + j] > max) max = logits[o + j];
    let sum = 0;
    for (let j = 0; j < v; j++) sum += Math.exp(logits[o + j] - max);
    const l = max + Math.log(sum);
    lse[i] = l;
    logprobs[i] = logits[o + targets[i]] - l;
  }
}

/**
 * forward: logprob = logit_t − log Σ_v exp(logit_v)
 *   dlogit_v = dlogprob · (onehot(t)_v − exp(logit_v − lse))
 */
export function logSoftmaxGatherBackward(
  dlogits: Float32Array,
  dlogprobs: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  lse: Float32Array,
  n: number,
  v: number,
): void {
  for (let i = 0; i < n; i++) {
    const o = i * v;
    const g = dlogprobs[i];
    const l = lse[i];
    for (let j = 0; j < v; j++) {
      dlogits[o + j] = -g * Math.exp(logits[o + j] - l);
    }
    dlogits[o + targets[i]] = g * (1 - Math.exp(logits[o + targets[i]] - l));
  }
}
