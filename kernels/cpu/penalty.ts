/**
 * The repetition penalty (transformers' `RepetitionPenaltyLogitsProcessor`)
 * and the per-row record of seen tokens it reads.
 *
 * Shapes: logits, seen [B,V] (seen: 1 where row b's sequence holds token v,
 * else 0); tokens [B·n] (i32, n per row, in 0 … V−1; checked by the caller).
 *
 * Where seen ≠ 0: logit → logit · p if logit < 0, else logit / p, in f32
 * arithmetic with p = f32(penalty) (f64 products and quotients of f32
 * operands, rounded once to f32, are the f32 results).
 *
 * @module
 */

/** Applies the penalty to `logits` in place where `seen` is non-zero. */
export function penalizeSeen(
  logits: Float32Array,
  seen: Float32Array,
  penalty: number,
): void {
  const p = Math.fround(penalty);
  for (let i = 0; i < logits.length; i++) {
    if (seen[i] === 0) continue;
    const x = logits[i];
    logits[i] = x < 0 ? x * p : x / p;
  }
}

/** Sets seen[b, tokens[b·n + i]] = 1 for every row b of `seen` (width v). */
export function markSeen(
  seen: Float32Array,
  tokens: Int32Array,
  rows: number,
  v: number,
): void {
  const n = tokens.length / rows;
  for (let b = 0; b < rows; b++) {
    for (let i = 0; i < n; i++) seen[b * v + tokens[b * n + i]] = 1;
  }
}
