/**
 * The k most likely tokens of each row of logits, with their log-softmax
 * log-probabilities, for a sampler's `topkPromptLogprobs`.
 *
 * The logits stay on the device; rows come back to the host a chunk at a
 * time (at most {@linkcode TOPK_READ_BYTES} per read), so a 152k-token
 * vocabulary over a long prompt never reads back gigabytes at once.
 *
 * @module
 */
import type { Backend, Tensor } from "../kernels/backend.ts";

/** Most bytes of logits one read-back holds (whole rows; at least one row). */
export const TOPK_READ_BYTES = 16 << 20;

/** One row's top tokens: `[tokenId, logprob]`, logprob descending, ties by id ascending. */
export type TopkRow = Array<[number, number]>;

/**
 * For each row i of `logits` [N,V], the `k` tokens (k ≤ V) with the largest
 * logprob = logit − lse[i] (rounded to f32, as the device's gathered
 * logprobs are), where `lse` [N] is each row's log-sum-exp (from
 * {@linkcode Backend.logSoftmaxGather}). Neither tensor is freed.
 *
 * @example
 * ```ts ignore
 * const { logprobs, lse } = be.logSoftmaxGather(logits, targets);
 * const top = await topkLogprobs(be, logits, lse, 5); // top[i][0] is row i's argmax
 * ```
 */
export async function topkLogprobs(
  be: Backend,
  logits: Tensor,
  lse: Tensor,
  k: number,
  readBytes: number = TOPK_READ_BYTES,
): Promise<TopkRow[]> {
  const [n, v] = logits.shape;
  if (!Number.isInteger(k) || k < 1 || k > v) {
    throw new RangeError(`topkLogprobs: k must be an integer in [1, ${v}]`);
  }
  const lses = await be.read(lse);
  const per = Math.max(1, Math.floor(readBytes / (v * 4)));
  const out: TopkRow[] = [];
  for (let r0 = 0; r0 < n; r0 += per) {
    const rows = Math.min(per, n - r0);
    // gather rows r0 … r0+rows−1 with the embedding op (logits play the table)
    const idx = be.fromInts(
      Int32Array.from({ length: rows }, (_, i) => r0 + i),
      [rows],
    );
    const chunk = be.embedding(logits, idx);
    be.free(idx);
    let host: Float32Array;
    try {
      host = await be.read(chunk);
    } finally {
      be.free(chunk);
    }
    for (let i = 0; i < rows; i++) {
      out.push(topkRow(host.subarray(i * v, (i + 1) * v), lses[r0 + i], k));
    }
  }
  return out;
}

/**
 * The `k` largest f32(logit − lse) of one row, as `[id, logprob]` pairs:
 * logprob descending, ties by id ascending.
 */
export function topkRow(row: Float32Array, lse: number, k: number): TopkRow {
  // best[0 … len) sorted; a candidate enters when it beats the last
  const ids = new Int32Array(k), lps = new Float64Array(k);
  let len = 0;
  for (let j = 0; j < row.length; j++) {
    const lp = Math.fround(row[j] - lse);
    // ids arrive ascending, so an equal logprob never beats a kept one
    if (len === k && !(lp > lps[k - 1])) continue;
    let at = len < k ? len : k - 1;
    while (at > 0 && lp > lps[at - 1]) {
      lps[at] = lps[at - 1];
      ids[at] = ids[at - 1];
      at--;
    }
    lps[at] = lp;
    ids[at] = j;
    if (len < k) len++;
  }
  return Array.from({ length: len }, (_, i) => [ids[i], lps[i]]);
}
