/**
 * Replies of the training and sampling operations (tinker-api.md §1.2–1.6,
 * camelCase). Reply schemas accept extra fields, so an older client can read
 * a newer server's replies.
 *
 * @module
 */

import { z } from "zod";
import { TensorDataSchema } from "./tensor_data.ts";

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
export type Metrics = z.output<typeof MetricsSchema>;

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
export type ForwardBackwardOutput = z.output<
  typeof ForwardBackwardOutputSchema
>;

/** Schema of an optimizer step's reply. */
export const OptimStepResponseSchema = z.object({ metrics: MetricsSchema });

/** An optimizer step's reply: its metrics. */
export type OptimStepResponse = z.output<typeof OptimStepResponseSchema>;

/** Schema of `saveState`'s reply. */
export const SaveWeightsResponseSchema = z.object({ path: z.string() });

/** `saveState`'s reply: the `bios://<run>/weights/<name>` path. */
export type SaveWeightsResponse = z.output<typeof SaveWeightsResponseSchema>;

/** Schema of `saveWeightsForSampler`'s reply. */
export const SaveWeightsForSamplerResponseSchema = z.object({
  path: z.string(),
});

/** `saveWeightsForSampler`'s reply: the `bios://<run>/sampler_weights/<name>` path. */
export type SaveWeightsForSamplerResponse = z.output<
  typeof SaveWeightsForSamplerResponseSchema
>;

/** Schema of `loadState`'s reply. */
export const LoadWeightsResponseSchema = z.object({ path: z.string() });

/** `loadState`'s reply: the path that was loaded. */
export type LoadWeightsResponse = z.output<typeof LoadWeightsResponseSchema>;

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
export type SampledSequence = z.output<typeof SampledSequenceSchema>;

/** Schema of a sampling reply. */
export const SampleResponseSchema = z.object({
  sequences: z.array(SampledSequenceSchema),
  promptLogprobs: z.array(anyNumber.nullable()).optional(),
});

/**
 * A sampling reply: the sequences, and (when asked) each prompt token's
 * log-probability, `null` for the first token, which nothing predicts.
 */
export type SampleResponse = z.output<typeof SampleResponseSchema>;

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
export type GetInfoResponse = z.output<typeof GetInfoResponseSchema>;

/** Schema of one model a server offers. */
export const SupportedModelSchema = z.object({
  modelName: z.string(),
  maxContextLength: z.number(),
});

/** One model a server offers, with its context length. */
export type SupportedModel = z.output<typeof SupportedModelSchema>;

/** Schema of `getServerCapabilities`'s reply. */
export const GetServerCapabilitiesResponseSchema = z.object({
  supportedModels: z.array(SupportedModelSchema),
  backend: z.string().optional(),
  device: z.string().optional(),
});

/** `getServerCapabilities`'s reply: models, and the compute backend and device. */
export type GetServerCapabilitiesResponse = z.output<
  typeof GetServerCapabilitiesResponseSchema
>;

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
export type WeightsInfoResponse = z.output<typeof WeightsInfoResponseSchema>;
