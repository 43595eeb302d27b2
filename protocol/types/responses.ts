/**
 * Replies of the training and sampling operations (tinker-api.md §1.2–1.6,
 * camelCase). Reply schemas accept extra fields, so an older client can read
 * a newer server's replies.
 *
 * @module
 */

import { z } from "zod";
import { type TensorData, TensorDataSchema } from "./tensor_data.ts";

/**
 * Any JS number, NaN and ±Infinity included: a diverged run's loss is NaN,
 * and a reply must still carry it rather than fail to parse.
 */
const anyNumber = z.custom<number>((v) => typeof v === "number", {
  error: "must be a number",
});

/**
 * Schema of metrics whose keys are `name:reduction` (exactly one `:`), as the
 * anchor's clients split every key on it (tinker-api.md §2.7).
 */
export const MetricsSchema = z.record(
  z.string().refine((k) => k.split(":").length === 2, {
    error: 'must be "name:reduction" (exactly one ":")',
    abort: true,
  }),
  anyNumber,
);

/** Metrics keyed `name:reduction`, e.g. `{ "loss:sum": 1.23 }`. */
export type Metrics = Record<string, number>;

/** Schema of a forward or forward-backward reply. */
export const ForwardBackwardOutputSchema = z.object({
  lossFnOutputType: z.string(),
  lossFnOutputs: z.array(z.record(z.string(), TensorDataSchema)),
  metrics: MetricsSchema,
  loss: anyNumber,
});

/**
 * A forward or forward-backward reply: per-datum outputs (each holds
 * `logprobs`, the target tokens' log-probabilities), metrics, and
 * `loss` (= `metrics["loss:sum"]`, a Bios addition).
 */
export interface ForwardBackwardOutput {
  /** Kind of the per-datum outputs, e.g. `"ArrayRecord"`. */
  lossFnOutputType: string;
  /** One record per datum; each holds `logprobs` (float32, one per token). */
  lossFnOutputs: Array<Record<string, TensorData>>;
  /** Metrics keyed `name:reduction`, with at least `loss:sum`. */
  metrics: Metrics;
  /** The summed loss, `metrics["loss:sum"]`. */
  loss: number;
}

/** Schema of an optimizer step's reply. */
export const OptimStepResponseSchema = z.object({ metrics: MetricsSchema });

/** An optimizer step's reply: its metrics. */
export interface OptimStepResponse {
  /** Metrics of the step, e.g. `step:max`, `learning_rate:mean`. */
  metrics: Metrics;
}

/** Schema of `saveState`'s reply. */
export const SaveWeightsResponseSchema = z.object({ path: z.string() });

/** `saveState`'s reply: the `bios://<run>/weights/<name>` path. */
export interface SaveWeightsResponse {
  /** Where the checkpoint is: `bios://<run>/weights/<name>`. */
  path: string;
}

/** Schema of `saveWeightsForSampler`'s reply. */
export const SaveWeightsForSamplerResponseSchema = z.object({
  path: z.string(),
});

/** `saveWeightsForSampler`'s reply: the `bios://<run>/sampler_weights/<name>` path. */
export interface SaveWeightsForSamplerResponse {
  /** Where the weights are: `bios://<run>/sampler_weights/<name>`. */
  path: string;
}

/** Schema of `loadState`'s reply. */
export const LoadWeightsResponseSchema = z.object({ path: z.string() });

/** `loadState`'s reply: the path that was loaded. */
export interface LoadWeightsResponse {
  /** The checkpoint that was loaded. */
  path: string;
}

/** Schema of one generated sequence. */
export const SampledSequenceSchema = z.object({
  stopReason: z.enum(["stop", "length"]),
  tokens: z.array(z.number()),
  logprobs: z.array(anyNumber),
});

/**
 * One generated sequence: why it stopped (`stop`: a stop sequence or the
 * end-of-sequence token; `length`: `maxTokens` or the context ran out), its
 * tokens, and each token's log-probability under the sampling distribution.
 */
export interface SampledSequence {
  /** `stop` or `length`. */
  stopReason: "stop" | "length";
  /** The generated token ids. */
  tokens: number[];
  /** Log-probability of each generated token. */
  logprobs: number[];
}

/** Schema of a sampling reply. */
export const SampleResponseSchema = z.object({
  sequences: z.array(SampledSequenceSchema),
  promptLogprobs: z.array(anyNumber.nullable()).optional(),
  topkPromptLogprobs: z.array(
    z.array(z.tuple([z.number(), anyNumber])).nullable(),
  ).optional(),
});

/**
 * A sampling reply: the sequences, and (when asked) each prompt token's
 * log-probability, `null` for the first token, which nothing predicts.
 */
export interface SampleResponse {
  /** One entry per requested sample. */
  sequences: SampledSequence[];
  /** Per prompt token log-probabilities, when asked; the first is `null`. */
  promptLogprobs?: Array<number | null>;
  /**
   * When `topkPromptLogprobs` k > 0 was asked: for each prompt position, the
   * k likeliest tokens there given the tokens before it, as
   * `[tokenId, logprob]` sorted by logprob descending (ties by id
   * ascending); the first is `null`. Log-probabilities of the raw model
   * (log-softmax of its logits), as `promptLogprobs`.
   */
  topkPromptLogprobs?: Array<Array<[number, number]> | null>;
}

/** Schema of `getInfo`'s reply. */
export const GetInfoResponseSchema = z.object({
  modelId: z.string(),
  modelData: z.object({
    arch: z.string(),
    modelName: z.string(),
    tokenizerId: z.string().optional(),
  }),
  isLora: z.literal(true),
  loraRank: z.number(),
  modelName: z.string(),
});

/** `getInfo`'s reply: the run's model and its LoRA rank. */
export interface GetInfoResponse {
  /** The run's id. */
  modelId: string;
  /** The base model's architecture and name. */
  modelData: {
    /** Architecture, e.g. `"llama"`. */
    arch: string;
    /** Base model name. */
    modelName: string;
    /** Tokenizer to load, when it differs from the model name. */
    tokenizerId?: string;
  };
  /** Always true: Bios trains LoRA adapters. */
  isLora: true;
  /** The adapter's rank. */
  loraRank: number;
  /** Base model name. */
  modelName: string;
}

/** Schema of one model a server offers. */
export const SupportedModelSchema = z.object({
  modelName: z.string(),
  maxContextLength: z.number(),
});

/** One model a server offers, with its context length. */
export interface SupportedModel {
  /** Name to pass as `baseModel`. */
  modelName: string;
  /** Longest sequence the model takes, in tokens. */
  maxContextLength: number;
}

/** Schema of `getServerCapabilities`'s reply. */
export const GetServerCapabilitiesResponseSchema = z.object({
  supportedModels: z.array(SupportedModelSchema),
  unsupportedModels: z.array(z.object({
    modelName: z.string(),
    reason: z.string(),
  })).optional(),
  backend: z.string().optional(),
  device: z.string().optional(),
});

/** `getServerCapabilities`'s reply: models, and the compute backend and device. */
export interface GetServerCapabilitiesResponse {
  /** The models this server trains and samples. */
  supportedModels: SupportedModel[];
  /**
   * Models the catalog names that this server cannot serve, each with the
   * reason (an architecture Bios does not support, an unreadable config).
   */
  unsupportedModels?: { modelName: string; reason: string }[];
  /** Compute backend, e.g. `"webgpu"`, `"native"`, `"cpu"`. */
  backend?: string;
  /** The device the backend runs on, in words. */
  device?: string;
}

/** Schema of the reply describing a checkpoint's weights. */
export const WeightsInfoResponseSchema = z.object({
  baseModel: z.string(),
  isLora: z.boolean(),
  loraRank: z.number(),
  trainUnembed: z.boolean(),
  trainMlp: z.boolean(),
  trainAttn: z.boolean(),
});

/** What a checkpoint holds: its base model and LoRA settings. */
export interface WeightsInfoResponse {
  /** The model the checkpoint adapts. */
  baseModel: string;
  /** Whether the checkpoint is a LoRA adapter. */
  isLora: boolean;
  /** The adapter's rank. */
  loraRank: number;
  /** Whether the unembedding is adapted. */
  trainUnembed: boolean;
  /** Whether MLP projections are adapted. */
  trainMlp: boolean;
  /** Whether attention projections are adapted. */
  trainAttn: boolean;
}
