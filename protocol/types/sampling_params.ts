/**
 * `SamplingParams`: how a sampler draws tokens (tinker-api.md §1.6).
 *
 * `maxTokens` is required unless a non-empty `stop` is given (the anchor's
 * "no maxTokens, no stop" is unbounded, so Bios refuses it). With `stop`
 * and no `maxTokens`, generation ends at a stop sequence, at the end of the
 * model's context, or after {@link MAX_SAMPLING_TOKENS} tokens, whichever
 * comes first.
 *
 * @module
 */

import { z } from "zod";
import { finiteNumber, safeInteger, TokenIdsSchema } from "./checks.ts";

/** Most tokens one sequence may generate. */
export const MAX_SAMPLING_TOKENS = 4096;

/** Most stop sequences (or stop token ids) one request may give. */
export const MAX_STOP_ENTRIES = 64;

/** Largest `repetitionPenalty` a request may give. */
export const MAX_REPETITION_PENALTY = 10;

/** Schema of stop conditions: a string, strings, or token ids. */
export const StopSchema = z.union([
  z.string().min(1, { error: "must not be an empty string" }),
  z.array(z.string().min(1, { error: "must not be an empty string" }))
    .max(MAX_STOP_ENTRIES, {
      error: `must have at most ${MAX_STOP_ENTRIES} entries`,
    }),
  TokenIdsSchema.refine((v) => v.length <= MAX_STOP_ENTRIES, {
    error: `must have at most ${MAX_STOP_ENTRIES} entries`,
    abort: true,
  }),
], {
  error: "must be a string, an array of strings, or an array of token ids",
});

const SEED_RULE = `must be an integer in [0, ${Number.MAX_SAFE_INTEGER}]`;

/** Schema of a random seed: a non-negative safe integer. */
export const SeedSchema = safeInteger(SEED_RULE, (v) => v >= 0);

function hasStop(stop: string | readonly unknown[] | Int32Array | undefined) {
  return stop !== undefined && stop.length > 0;
}

/** Schema of sampling settings; omitted fields take the anchor's defaults. */
export const SamplingParamsSchema = z.strictObject({
  maxTokens: safeInteger(
    `must be an integer in [1, ${MAX_SAMPLING_TOKENS}]`,
    (v) => v >= 1 && v <= MAX_SAMPLING_TOKENS,
  ).optional(),
  temperature: finiteNumber(
    "must be a finite number ≥ 0 (0 samples greedily)",
    (v) => v >= 0,
  ).default(1),
  topK: safeInteger(
    "must be -1 (off) or an integer ≥ 1",
    (v) => v === -1 || v >= 1,
  ).default(-1),
  topP: finiteNumber("must be in (0, 1]", (v) => v > 0 && v <= 1).default(1),
  minP: finiteNumber("must be in [0, 1] (0 is off)", (v) => v >= 0 && v <= 1)
    .default(0),
  repetitionPenalty: finiteNumber(
    `must be in (0, ${MAX_REPETITION_PENALTY}] (1 is off)`,
    (v) => v > 0 && v <= MAX_REPETITION_PENALTY,
  ).default(1),
  stop: StopSchema.optional(),
  seed: SeedSchema.optional(),
}, { error: "must be an object of sampling settings" }).superRefine(
  (p, ctx) => {
    if (p.maxTokens === undefined && !hasStop(p.stop)) {
      ctx.addIssue({
        code: "custom",
        message:
          `is required unless a non-empty stop is given (an integer in [1, ${MAX_SAMPLING_TOKENS}])`,
        path: ["maxTokens"],
        input: undefined,
      });
    }
  },
);

/** Sampling settings with defaults filled in. */
export interface SamplingParams {
  /**
   * Most tokens to generate per sequence, in [1, 4096]. Required unless a
   * non-empty `stop` is given.
   */
  maxTokens?: number;
  /** Softmax temperature, ≥ 0; 0 samples greedily. Default 1. */
  temperature: number;
  /** Keep only the k likeliest tokens; -1 turns it off. Default -1. */
  topK: number;
  /** Keep the smallest set of tokens with this much probability, in (0, 1]. Default 1. */
  topP: number;
  /**
   * Min-p, in [0, 1]: after temperature, top-k and top-p, keep only the
   * tokens whose probability is at least `minP` times that of the most
   * likely token (which is always kept), as transformers' `MinPLogitsWarper`
   * and vLLM. 0 turns it off (the default); 1 keeps only the most likely
   * token (and any tied with it).
   */
  minP: number;
  /**
   * Repetition penalty, in (0, 10]: before temperature, the logit of every
   * token id that occurs in the prompt or in this sequence's generated tokens
   * so far becomes `logit · penalty` if negative and `logit / penalty`
   * otherwise (each id once, however often it occurs), as transformers'
   * `RepetitionPenaltyLogitsProcessor`. Above 1 discourages repeats; 1 turns
   * it off (the default).
   */
  repetitionPenalty: number;
  /** Stop at this string, any of these strings, or any of these token ids. */
  stop?: string | string[] | number[] | Int32Array;
  /** Seed for reproducible sampling. */
  seed?: number;
}

/** Sampling settings as users write them. */
export type SamplingParamsInput = Partial<SamplingParams>;
