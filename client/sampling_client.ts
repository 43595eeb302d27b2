/**
 * SamplingClient: generates from a base model plus a frozen adapter. The
 * client owns its sampler: `close()` stops it and frees its device memory,
 * and a client dropped without `close()` has its sampler stopped once it is
 * garbage-collected.
 *
 * @module
 */
import type { ActorRef } from "../runtime/actor_ref.ts";
import { ClientClosedError, InvalidArgumentError } from "../runtime/errors.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import type { ModelInput } from "../protocol/types/model_input.ts";
import {
  ComputeLogprobsRequestSchema,
  SampleRequestSchema,
} from "../protocol/messages.ts";
import type { SamplingParamsInput } from "../protocol/types/sampling_params.ts";
import type { SampleResponse } from "../protocol/types/responses.ts";
import type { SampleProgress } from "../protocol/sample_progress.ts";
import { SampleStream } from "./sample_stream.ts";
import { APIFuture } from "./api_future.ts";
import type { SamplerInfo, SamplerLink } from "./link.ts";

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
  /**
   * Called with the tokens each sequence gained, as the sampler draws them
   * (each token once, in order; every token of the reply by the time the
   * sample resolves). Over the HTTP gateway, once with all of them. A
   * request without a seed is given a random one, so that a sampler taking
   * over a request from one that failed draws the same tokens. An error it
   * throws fails the sample, which still runs to its end.
   */
  onTokens?: (progress: SampleProgress) => void;
}

/** Stops the sampler of a client that was collected without `close()`. */
const orphans = new FinalizationRegistry<SamplerLink>((link) => link.release());

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
  readonly #link: SamplerLink;
  #closed?: Promise<void>;

  /**
   * A client of one sampler, which it owns: {@linkcode SamplingClient.close}
   * (or collection of the client) stops it.
   *
   * @param link the sampler, as the deployment reaches it (client/link.ts)
   */
  constructor(link: SamplerLink) {
    this.#link = link;
    orphans.register(this, link, this);
  }

  /** What it samples: its id, base model and checkpoint. */
  get info(): SamplerInfo {
    return this.#link.info;
  }

  /**
   * The sampler actor, for an embedded or NATS client.
   *
   * @throws {InvalidArgumentError} for a client of the HTTP gateway, which has no actor refs
   */
  get ref(): ActorRef {
    const ref = (this.#link as { ref?: ActorRef }).ref;
    if (ref === undefined) {
      throw new InvalidArgumentError(
        "ref",
        "a sampler reached through the HTTP gateway has no actor ref",
      );
    }
    return ref;
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
      const onTokens = args.onTokens;
      if (onTokens === undefined) return await this.#link.sample(req);
      if (typeof onTokens !== "function") {
        throw new InvalidArgumentError(
          "onTokens",
          "onTokens must be a function",
        );
      }
      req.samplingParams.seed ??= Math.floor(Math.random() * 2 ** 31);
      const stream = new SampleStream(onTokens);
      const out = await this.#link.sample(req, (p) => stream.take(p));
      stream.finish(out);
      return out;
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
      return await this.#link.computeLogprobs(req);
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
    orphans.unregister(this);
    await this.#link.stop();
  }
}
