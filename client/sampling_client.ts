/**
 * SamplingClient: generates from a base model plus a frozen adapter. The
 * client owns its sampler: `close()` stops it and frees its device memory,
 * and a client dropped without `close()` has its sampler stopped once it is
 * garbage-collected.
 *
 * @module
 */
import type { ActorRef } from "../runtime/actor_ref.ts";
import {
  ActorStoppedError,
  ClientClosedError,
  InvalidArgumentError,
  UnknownActorError,
} from "../runtime/errors.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import type { ModelInput } from "../protocol/types/model_input.ts";
import {
  ComputeLogprobsRequestSchema,
  SampleRequestSchema,
} from "../protocol/messages.ts";
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
  /**
   * Also return, for each prompt position, the k likeliest tokens and their
   * log-probabilities (k in [0, 100], at most the vocabulary; element 0 is
   * null). @default {0} (off)
   */
  topkPromptLogprobs?: number;
}

/** Time a sample request may take. */
const SAMPLE_TIMEOUT_MS = 3_600_000;

/** What a collected client's sampler needs to be stopped. */
interface Orphan {
  registry: ActorRef;
  samplerId: string;
}

/** Stops the sampler of a client that was collected without `close()`. */
const orphans = new FinalizationRegistry<Orphan>(({ registry, samplerId }) => {
  try {
    registry.tell({ type: "stop_sampler", samplerId });
  } catch {
    // the node is gone, and its samplers with it
  }
});

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
 * await sc.close(); // or `await using sc = …`
 * ```
 */
export class SamplingClient implements AsyncDisposable {
  readonly #registry?: ActorRef;
  #closed?: Promise<void>;

  /**
   * A client of one sampler actor. Given the registry that started it, the
   * client owns the sampler: {@linkcode SamplingClient.close} (or collection
   * of the client) stops it there.
   *
   * @param ref the sampler actor
   * @param info what it samples
   * @param registry the registry to stop the sampler through
   */
  constructor(
    readonly ref: ActorRef,
    readonly info: { samplerId: string; baseModel: string; modelPath?: string },
    registry?: ActorRef,
  ) {
    this.#registry = registry;
    if (registry) {
      orphans.register(this, { registry, samplerId: info.samplerId }, this);
    }
  }

  /** Throws ClientClosedError once `close()` has been called. */
  #assertOpen(): void {
    if (this.#closed) throw new ClientClosedError("SamplingClient");
  }

  /** Generate `numSamples` continuations of `prompt`. */
  sample(args: SampleArgs): APIFuture<SampleResponse> {
    const p = (async () => {
      this.#assertOpen();
      if (args === null || typeof args !== "object") {
        throw new InvalidArgumentError(
          "args",
          "sample takes { prompt, samplingParams, numSamples? }",
        );
      }
      // Checked here with the sampler's own schema; what goes is plain data.
      const req = parseOrThrow(SampleRequestSchema, {
        type: "sample",
        prompt: args.prompt,
        numSamples: args.numSamples ?? 1,
        samplingParams: args.samplingParams,
        includePromptLogprobs: args.includePromptLogprobs ?? false,
        topkPromptLogprobs: args.topkPromptLogprobs ?? 0,
      }, "");
      return await this.ref.ask<SampleResponse>(req, {
        timeoutMs: SAMPLE_TIMEOUT_MS,
      });
    })();
    return new APIFuture(p);
  }

  /** Log-probability of each prompt token given the ones before it (element 0 is null). */
  computeLogprobs(prompt: ModelInput): APIFuture<(number | null)[]> {
    const p = (async () => {
      this.#assertOpen();
      const req = parseOrThrow(ComputeLogprobsRequestSchema, {
        type: "compute_logprobs",
        prompt,
      }, "");
      return await this.ref.ask<(number | null)[]>(req, {
        timeoutMs: SAMPLE_TIMEOUT_MS,
      });
    })();
    return new APIFuture(p);
  }

  /** The base model this sampler runs. */
  getBaseModel(): string {
    return this.info.baseModel;
  }

  /**
   * Stop the sampler (after the request it is running) and free its device
   * memory. Idempotent; later `sample` and `computeLogprobs` calls are
   * refused with {@linkcode ClientClosedError}.
   */
  close(): Promise<void> {
    this.#closed ??= this.#stop();
    return this.#closed;
  }

  /** `await using sc = …` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #stop(): Promise<void> {
    const registry = this.#registry;
    if (!registry) return;
    orphans.unregister(this);
    await registry.ask({
      type: "stop_sampler",
      samplerId: this.info.samplerId,
    }).catch((e) => {
      // A node that is gone took its samplers with it.
      if (e instanceof ActorStoppedError || e instanceof UnknownActorError) {
        return;
      }
      throw e;
    });
  }
}
