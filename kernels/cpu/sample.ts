/**
 * Token sampling from logit rows by inverse CDF over a fixed order.
 *
 * Shapes: logits [B,V]; uniforms [B] (each in [0,1)); tokens (i32) and
 * logprobs [B].
 *
 * Per row:
 * - temperature 0: the argmax (lowest id on ties); its logprob is the
 *   untempered log-softmax.
 * - otherwise p_v ∝ exp((logit_v − max) / temperature), in float64. Tokens are ordered by probability descending, ties by token id
 *   ascending (the order compares the f32 logits, which softmax and a positive
 *   temperature preserve). Top-k keeps the first k (topK ≤ 0 or ≥ V keeps
 *   all); top-p then keeps the shortest prefix of those whose mass, renormalized
 *   over the top-k set, reaches topP (masses summed in that order) (topP ≥ 1 keeps all);
 *   min-p then keeps, of those, the ones with exp((logit − max) / temperature)
 *   ≥ minP (their probability over the max token's, whose value is 1; a
 *   prefix of the order, as the value falls along it; minP ≤ 0 keeps all),
 *   and the kept mass is summed again in order. The token is the
 *   first in that order whose cumulative mass exceeds u · (kept mass), and its
 *   logprob is log(p_token / kept mass).
 *
 * @module
 */

/** Sampling controls (temperature, top-k, top-p, min-p). */
export interface SampleParams {
  /** 0 means greedy. */
  temperature: number;
  /** Keep the k most likely tokens; ≤ 0 keeps all. */
  topK: number;
  /** Nucleus mass; ≥ 1 keeps all. */
  topP: number;
  /** Min-p: keep tokens with probability ≥ minP · the max's; ≤ 0 (or absent) keeps all. */
  minP?: number;
}

/** Largest vocabulary the sort key can hold (ids below 2^21). */
export const MAX_SAMPLE_VOCAB = 1 << 21;

/** Fills tokens and logprobs for `b` rows of width `v`. */
export function sampleRows(
  tokens: Int32Array,
  logprobs: Float32Array,
  logits: Float32Array,
  uniforms: Float32Array,
  b: number,
  v: number,
  params: SampleParams,
): void {
  const keys = new Float64Array(v);
  const bits = new Uint32Array(1);
  const bitsF = new Float32Array(bits.buffer);
  const e = new Float64Array(v);
  for (let r = 0; r < b; r++) {
    const o = r * v;
    let max = -Infinity;
    let arg = 0;
    for (let j = 0; j < v; j++) {
      if (logits[o + j] > max) {
        max = logits[o + j];
        arg = j;
      }
    }
    if (params.temperature === 0) {
      let sum = 0;
      for (let j = 0; j < v; j++) sum += Math.exp(logits[o + j] - max);
      tokens[r] = arg;
      logprobs[r] = -Math.log(sum); // logit_arg − lse with logit_arg = max
      continue;
    }
    for (let j = 0; j < v; j++) {
      e[j] = Math.exp((logits[o + j] - max) / params.temperature);
    }
    // Sort key: descending f32 logit in the high 32 bits, id in the low 21.
    for (let j = 0; j < v; j++) {
      bitsF[0] = logits[o + j];
      const u = bits[0];
      // order-preserving map of f32 bits to an unsigned integer, then flipped
      const asc = u & 0x80000000 ? (~u >>> 0) : (u | 0x80000000) >>> 0;
      keys[j] = (0xffffffff - asc) * MAX_SAMPLE_VOCAB + j;
    }
    keys.sort();
    // top-k: the first k in order
    const k = params.topK > 0 && params.topK < v ? params.topK : v;
    let massK = 0;
    for (let x = 0; x < k; x++) massK += e[keys[x] % MAX_SAMPLE_VOCAB];
    // top-p: the shortest prefix whose mass reaches topP · massK
    let kept = k;
    let keptMass = massK;
    if (params.topP < 1) {
      const target = params.topP * massK;
      let cum = 0;
      for (let x = 0; x < k; x++) {
        cum += e[keys[x] % MAX_SAMPLE_VOCAB];
        if (cum >= target) {
          kept = x + 1;
          keptMass = cum;
          break;
        }
      }
    }
    // min-p: the prefix whose e (the probability over the max's) is ≥ minP
    const minP = params.minP ?? 0;
    if (minP > 0) {
      let n = 1; // the max token, e = 1
      while (n < kept && e[keys[n] % MAX_SAMPLE_VOCAB] >= minP) n++;
      if (n < kept) {
        kept = n;
        keptMass = 0;
        for (let x = 0; x < kept; x++) {
          keptMass += e[keys[x] % MAX_SAMPLE_VOCAB];
        }
      }
    }
    const u = uniforms[r] * keptMass;
    let tok = keys[kept - 1] % MAX_SAMPLE_VOCAB;
    let cum = 0;
    for (let x = 0; x < kept; x++) {
      const id = keys[x] % MAX_SAMPLE_VOCAB;
      cum += e[id];
      if (cum > u) {
        tok = id;
        break;
      }
    }
    tokens[r] = tok;
    logprobs[r] = Math.log(e[tok] / keptMass);
  }
}
