/**
 * SamplingClient: generates from a base model plus a frozen adapter.
 *
 * @module
 */
import type { ActorRef } from "../runtime/actor_ref.ts";
import { InvalidArgumentError } from "../runtime/errors.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  type ModelInput,
  NonEmptyModelInputSchema,
} from "../protocol/types/model_input.ts";
import type { SamplingParamsInput } from "../protocol/types/sampling_params.ts";
import type { SampleResponse } from "../protocol/types/responses.ts";
import { APIFuture } from "./api_future.ts";

/** Arguments of {@linkcode SamplingClient.sample}. */
export interface SampleArgs {
  /** The prompt. */
  prompt: ModelInput;
  /** Generation settings (maxTokens, temperature, topP, topK, stop, seed). */
  samplingParams: SamplingParamsInput;
  /** Number of independent samples. @default {1} */
  numSamples?: number;
  /** Also return the log-probability of each prompt token (element 0 is null). */
  includePromptLogprobs?: boolean;
}

/** Time a sample request may take. */
const SAMPLE_TIMEOUT_MS = 3_600_000;

/**
 * A client of one sampler.
 *
 * @example
 * ```ts ignore
 * const out = await sc.sample({
 *   prompt: types.ModelInput.fromInts([1, 2, 3]),
 *   samplingParams: { maxTokens: 16, temperature: 0.7 },
 *   numSamples: 2,
 * });
 * console.log(out.sequences[0].tokens);
 * ```
 */
export class SamplingClient {
  /**
   * A client of one sampler actor.
   *
   * @param ref the sampler actor
   * @param info what it samples
   */
  constructor(
    readonly ref: ActorRef,
    readonly info: { samplerId: string; baseModel: string; modelPath?: string },
  ) {}

  /** Generate `numSamples` continuations of `prompt`. */
  sample(args: SampleArgs): APIFuture<SampleResponse> {
    const p = (async () => {
      if (args === null || typeof args !== "object") {
        throw new InvalidArgumentError(
          "args",
          "sample takes { prompt, samplingParams, numSamples? }",
        );
      }
      const prompt = parseOrThrow(
        NonEmptyModelInputSchema,
        args.prompt,
        "prompt",
      );
      const ids = prompt.chunks.flatMap((c) => Array.from(c.tokens));
      return await this.ref.ask<SampleResponse>({
        type: "sample",
        prompt: Int32Array.from(ids),
        numSamples: args.numSamples ?? 1,
        samplingParams: args.samplingParams,
        includePromptLogprobs: args.includePromptLogprobs ?? false,
      }, { timeoutMs: SAMPLE_TIMEOUT_MS });
    })();
    return new APIFuture(p);
  }

  /** Log-probability of each prompt token given the ones before it (element 0 is null). */
  computeLogprobs(prompt: ModelInput): APIFuture<(number | null)[]> {
    const p = (async () => {
      const mi = parseOrThrow(NonEmptyModelInputSchema, prompt, "prompt");
      const ids = mi.chunks.flatMap((c) => Array.from(c.tokens));
      return await this.ref.ask<(number | null)[]>(
        { type: "compute_logprobs", prompt: Int32Array.from(ids) },
        { timeoutMs: SAMPLE_TIMEOUT_MS },
      );
    })();
    return new APIFuture(p);
  }

  /** The base model this sampler runs. */
  getBaseModel(): string {
    return this.info.baseModel;
  }
}
