/**
 * A streaming `sample`'s progress: after each read of sampled tokens, the
 * sampler tells the request's `streamTo` address the tokens each sequence
 * gained since its last message. Told, not asked: at most once and in
 * order, and a message lost on the way is made good by the reply, which
 * holds every token (client/sample_stream.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseOrThrow } from "./parse.ts";
 * import { SampleProgressSchema } from "./sample_progress.ts";
 * const p = parseOrThrow(SampleProgressSchema, {
 *   type: "sample_progress",
 *   sequences: [{ from: 0, tokens: [72, 105], logprobs: [-0.5, -1.25] }],
 * }, "");
 * assert.equal(p.sequences[0].tokens.length, 2);
 * ```
 *
 * @module
 */
import { z } from "zod";
import { safeInteger } from "./types/checks.ts";
import { MAX_NUM_SAMPLES } from "./messages.ts";

/** The tokens one sequence gained: `tokens[i]` is its token at position `from + i`. */
export interface SequenceProgress {
  /** Position (in the sequence's generated tokens) of `tokens[0]`. */
  from: number;
  /** The new token ids. */
  tokens: number[];
  /** Each new token's log-probability. */
  logprobs: number[];
}

/** What a streaming sample's sequences gained since the last message. */
export interface SampleProgress {
  /** One entry per sequence of the request, in order. */
  sequences: SequenceProgress[];
}

const SequenceProgressSchema = z.strictObject({
  from: safeInteger("must be an integer ≥ 0", (v) => v >= 0),
  tokens: z.array(safeInteger("must be an integer ≥ 0", (v) => v >= 0)),
  logprobs: z.array(z.number({ error: "must be a number" })),
}).refine((s) => s.tokens.length === s.logprobs.length, {
  error: "tokens and logprobs must be as long",
});

/** Schema of the message a sampler tells a sample stream's address. */
export const SampleProgressSchema: z.ZodType<
  SampleProgress & { type: "sample_progress" }
> = z.strictObject({
  type: z.literal("sample_progress"),
  sequences: z.array(SequenceProgressSchema).min(1).max(MAX_NUM_SAMPLES),
});
