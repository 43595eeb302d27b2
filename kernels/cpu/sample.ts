/**
 * Token sampling from logit rows by inverse CDF over a fixed order.
 *
 * Shapes: logits [B,V]; uniforms [B] (each in [0,1)); tokens (i32) and
 * logprobs [B].
 *
 * Per row:
 * - temperature 0: the argmax (lowest id on ties); its logprob is the
 *   untempered log-softmax.
 * - otherwise p_v ∝ exp((logit_v − max) / temperature), in float64. Tokens
 *   are ordered by probability descending, ties by token id ascending (the
 *   order compares the f32 logits' bits, which softmax and a positive
 *   temperature preserve; so -0 comes after +0). The order is found by a
 *   radix sort of the ids, not a comparison sort (see `orderRow`). Top-k
 *   keeps the first k (topK ≤ 0 or ≥ V keeps all); top-p then keeps the
 *   shortest prefix of those whose mass, renormalized over the top-k set,
 *   reaches topP (masses summed in that order) (topP ≥ 1 keeps all);
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

/** Largest vocabulary a row may have (the WebGPU kernel's limit too). */
export const MAX_SAMPLE_VOCAB = 1 << 21;

/** Bits of the order key each radix pass sorts by (3 passes cover 32 bits). */
const RADIX_BITS = 11;
const RADIX = 1 << RADIX_BITS;

/**
 * The ids of one row in the fixed order: f32 logit descending, ties by id
 * ascending. A stable least-significant-digit radix sort of the ids (taken
 * in id order) by a 32-bit key that ascends as the logit descends: three
 * passes over the row, where a comparison sort of its keys took V·log V
 * (a 152k vocabulary: about 1 ms against 17).
 *
 * @param order where the ids go (length ≥ v)
 * @param scratch a second buffer as long
 * @param keys a third, for the keys
 */
function orderRow(
  logits: Float32Array,
  o: number,
  v: number,
  order: Uint32Array,
  scratch: Uint32Array,
  keys: Uint32Array,
  keysScratch: Uint32Array,
  counts: Uint32Array,
): Uint32Array {
  const bits = new Uint32Array(logits.buffer, logits.byteOffset + o * 4, v);
  for (let j = 0; j < v; j++) {
    const u = bits[j];
    // order-preserving map of f32 bits to an unsigned integer, then flipped
    const asc = u & 0x80000000 ? (~u >>> 0) : (u | 0x80000000) >>> 0;
    keys[j] = 0xffffffff - asc;
    order[j] = j;
  }
  let src = order, dst = scratch, kSrc = keys, kDst = keysScratch;
  for (let shift = 0; shift < 32; shift += RADIX_BITS) {
    counts.fill(0);
    for (let j = 0; j < v; j++) counts[(kSrc[j] >>> shift) & (RADIX - 1)]++;
    let at = 0;
    for (let d = 0; d < RADIX; d++) {
      const c = counts[d];
      counts[d] = at;
      at += c;
    }
    for (let j = 0; j < v; j++) {
      const d = (kSrc[j] >>> shift) & (RADIX - 1);
      const to = counts[d]++;
      dst[to] = src[j];
      kDst[to] = kSrc[j];
    }
    [src, dst] = [dst, src];
    [kSrc, kDst] = [kDst, kSrc];
  }
  return src;
}

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
  const ids = new Uint32Array(v);
  const idsScratch = new Uint32Array(v);
  const keys = new Uint32Array(v);
  const keysScratch = new Uint32Array(v);
  const counts = new Uint32Array(RADIX);
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
    const order = orderRow(
      logits,
      o,
      v,
      ids,
      idsScratch,
      keys,
      keysScratch,
      counts,
    );
    // top-k: the first k in order
    const k = params.topK > 0 && params.topK < v ? params.topK : v;
    let massK = 0;
    for (let x = 0; x < k; x++) massK += e[order[x]];
    // top-p: the shortest prefix whose mass reaches topP · massK
    let kept = k;
    let keptMass = massK;
    if (params.topP < 1) {
      const target = params.topP * massK;
      let cum = 0;
      for (let x = 0; x < k; x++) {
        cum += e[order[x]];
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
      while (n < kept && e[order[n]] >= minP) n++;
      if (n < kept) {
        kept = n;
        keptMass = 0;
        for (let x = 0; x < kept; x++) keptMass += e[order[x]];
      }
    }
    const u = uniforms[r] * keptMass;
    let tok = order[kept - 1];
    let cum = 0;
    for (let x = 0; x < kept; x++) {
      const id = order[x];
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
