/**
 * `encodeSampleResponse`: a Bios sampling reply as the
 * `tinker_public.SampleResponse` bytes SDK 0.25 reads from
 * `retrieve_future` when it asks with `Accept: application/x-protobuf`.
 *
 * Each sequence's tokens travel as int32 bytes, its log-probabilities as
 * float32 bytes, its stop reason as the `StopReason` enum. Prompt
 * log-probabilities are float32 with NaN where Bios has `null` (the first
 * token), which the SDK reads back as `None`. Top-k prompt log-probabilities
 * become two row-major N×K matrices, K the longest row; shorter rows and
 * `null` rows are padded with the SDK's empty cell (token 0, logprob
 * -99999), which it strips again. When every row is `null` K is 1, so the
 * SDK still sees N rows of `None` rather than no top-k at all.
 * `prompt_cache_hit_tokens` is 0: Bios has no prefix cache.
 *
 * @module
 */

import { create, toBinary } from "@bufbuild/protobuf";
import type { SampleResponse } from "../../protocol/types/responses.ts";
import {
  SampledSequenceSchema,
  SampleResponseSchema,
  StopReason,
  type TopkPromptLogprobsMsg,
  TopkPromptLogprobsSchema,
} from "./schema.ts";
import { float32Bytes, int32Bytes } from "./wire_arrays.ts";

/** The SDK's empty top-k cell: token id 0 with this log-probability. */
export const TOPK_MASK_LOGPROB = -99999.0;

function checkInt32s(values: ArrayLike<number>, where: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
      throw new Error(`${where}[${i}]: ${v} is not an int32 token id`);
    }
  }
}

/** The top-k rows as N×K matrices. */
function topk(
  rows: Array<Array<[number, number]> | null>,
): TopkPromptLogprobsMsg {
  let k = 0;
  for (const r of rows) if (r !== null) k = Math.max(k, r.length);
  if (rows.length > 0) k = Math.max(k, 1);
  const ids = new Int32Array(rows.length * k);
  const lps = new Float32Array(rows.length * k).fill(TOPK_MASK_LOGPROB);
  rows.forEach((r, i) => {
    r?.forEach(([id, lp], j) => {
      checkInt32s([id], `topkPromptLogprobs[${i}][${j}]`);
      ids[i * k + j] = id;
      lps[i * k + j] = lp;
    });
  });
  return create(TopkPromptLogprobsSchema, {
    tokenIds: int32Bytes(ids),
    logprobs: float32Bytes(lps),
    k,
    promptLength: rows.length,
  });
}

/**
 * Encodes a sampling reply as `tinker_public.SampleResponse`.
 *
 * @param res Bios's reply
 * @returns the protobuf bytes to send with `Content-Type: application/x-protobuf`
 * @throws Error when a token id is not an int32 or a stop reason is unknown
 *   (a server-side fault)
 *
 * @example
 * ```ts
 * import { encodeSampleResponse } from "./encode_sample.ts";
 * const bytes = encodeSampleResponse({
 *   sequences: [{ stopReason: "length", tokens: [5, 6], logprobs: [-0.1, -2] }],
 *   promptLogprobs: [null, -1.5],
 * });
 * console.log(bytes.length > 0);
 * ```
 */
export function encodeSampleResponse(res: SampleResponse): Uint8Array {
  const sequences = res.sequences.map((s, i) => {
    const reason = s.stopReason === "stop"
      ? StopReason.STOP
      : s.stopReason === "length"
      ? StopReason.LENGTH
      : undefined;
    if (reason === undefined) {
      throw new Error(
        `sequences[${i}].stopReason: ${
          String(s.stopReason)
        } is not "stop" or "length"`,
      );
    }
    checkInt32s(s.tokens, `sequences[${i}].tokens`);
    return create(SampledSequenceSchema, {
      stopReason: reason,
      tokens: int32Bytes(s.tokens),
      logprobs: float32Bytes(s.logprobs),
    });
  });
  return toBinary(
    SampleResponseSchema,
    create(SampleResponseSchema, {
      sequences,
      promptLogprobs: res.promptLogprobs === undefined
        ? undefined
        : float32Bytes(res.promptLogprobs.map((v) => v ?? NaN)),
      topkPromptLogprobs: res.topkPromptLogprobs === undefined
        ? undefined
        : topk(res.topkPromptLogprobs),
    }),
  );
}
