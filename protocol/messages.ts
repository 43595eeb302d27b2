/**
 * Requests a client sends to a Trainer or a Sampler actor: one
 * discriminated union on `type`. The same schemas check a request at the
 * client (before it is sent), at the HTTP gateway and in the actor.
 *
 * Every training operation carries its run id and a sequence number
 * (`seq`, from 1, one per operation): the trainer applies a run's
 * operations in `seq` order, and answers a replayed `seq` from its record.
 * Messages are plain data (typed arrays allowed), so they survive the wire
 * codec unchanged.
 *
 * @module
 */

import { z } from "zod";
import { SAMPLE_STREAM_ADDRESS } from "./addresses.ts";
import { AdamParamsSchema } from "./types/adam_params.ts";
import { CheckpointNameSchema, RunIdSchema } from "./types/checkpoint_path.ts";
import { safeInteger } from "./types/checks.ts";
import { DatumBatchSchema } from "./types/datum.ts";
import {
  isLocalAdapterPath,
  TrainingAdapterPathSchema,
} from "./types/adapter_path.ts";
import {
  LOSS_FN_INPUTS,
  lossFnConfigProblems,
  LossFnConfigSchema,
  LossFnTypeSchema,
  type LossInputKey,
} from "./types/loss_fn.ts";
import { NonEmptyModelInputSchema } from "./types/model_input.ts";
import {
  type ForwardBackwardOutput,
  ForwardBackwardOutputSchema,
  type GetInfoResponse,
  GetInfoResponseSchema,
  type LoadWeightsResponse,
  LoadWeightsResponseSchema,
  type OptimStepResponse,
  OptimStepResponseSchema,
  type SampleResponse,
  SampleResponseSchema,
  type SaveWeightsForSamplerResponse,
  SaveWeightsForSamplerResponseSchema,
  type SaveWeightsResponse,
  SaveWeightsResponseSchema,
} from "./types/responses.ts";
import { SamplingParamsSchema } from "./types/sampling_params.ts";

const typeRule = (types: readonly string[]): string =>
  `must be one of ${types.map((t) => `"${t}"`).join(", ")}`;

/** Most samples one `sample` request may ask for. */
export const MAX_NUM_SAMPLES = 128;

/**
 * Most top tokens per prompt position `topkPromptLogprobs` may ask for (a
 * sampler also refuses more than its model's vocabulary).
 */
export const MAX_TOPK_PROMPT_LOGPROBS = 100;

/** Schema of an operation's sequence number: an integer ≥ 1. */
export const SeqSchema = safeInteger("must be an integer ≥ 1", (v) => v >= 1);

const op = { runId: RunIdSchema, seq: SeqSchema };

const lossOp = {
  ...op,
  data: DatumBatchSchema,
  lossFn: LossFnTypeSchema,
  lossFnConfig: LossFnConfigSchema.optional(),
};

// The loss decides which inputs a datum must carry and which settings apply.
function refineLossOp(
  r: {
    data: Array<{ lossFnInputs: Partial<Record<LossInputKey, unknown>> }>;
    lossFn: z.output<typeof LossFnTypeSchema>;
    lossFnConfig?: Record<string, number>;
  },
  ctx: z.RefinementCtx,
): void {
  const { required, optional } = LOSS_FN_INPUTS[r.lossFn];
  const takes = [...required, ...optional];
  r.data.forEach((d, i) => {
    for (const key of required) {
      if (d.lossFnInputs[key] === undefined) {
        ctx.addIssue({
          code: "custom",
          message: `is required by ${r.lossFn}`,
          path: ["data", i, "lossFnInputs", key],
          input: undefined,
        });
      }
    }
    for (const key of Object.keys(d.lossFnInputs)) {
      if (!(takes as string[]).includes(key)) {
        ctx.addIssue({
          code: "custom",
          message: `is not an input of ${r.lossFn} (it takes ${
            takes.join(", ")
          })`,
          path: ["data", i, "lossFnInputs", key],
          input: d.lossFnInputs[key as LossInputKey],
        });
      }
    }
  });
  for (
    const [key, message] of lossFnConfigProblems(r.lossFn, r.lossFnConfig ?? {})
  ) {
    ctx.addIssue({
      code: "custom",
      message,
      path: ["lossFnConfig", key],
      input: r.lossFnConfig?.[key],
    });
  }
}

/** Schema of `forward`: losses and log-probabilities, no gradients. */
export const ForwardRequestSchema = z.strictObject({
  type: z.literal("forward"),
  ...lossOp,
}).superRefine(refineLossOp);

/** Schema of `forward_backward`: like `forward`, and accumulates gradients. */
export const ForwardBackwardRequestSchema = z.strictObject({
  type: z.literal("forward_backward"),
  ...lossOp,
}).superRefine(refineLossOp);

/** Schema of `optim_step`: one AdamW step on the accumulated gradients. */
export const OptimStepRequestSchema = z.strictObject({
  type: z.literal("optim_step"),
  ...op,
  adamParams: AdamParamsSchema,
});

/**
 * Schema of `save_state`: weights and optimizer state as
 * `bios://<run>/weights/<name>`. An existing name is refused unless
 * `overwrite` is true.
 */
export const SaveStateRequestSchema = z.strictObject({
  type: z.literal("save_state"),
  ...op,
  name: CheckpointNameSchema,
  overwrite: z.boolean({ error: "must be a boolean" }).default(false),
});

/**
 * Schema of `save_weights_for_sampler`: weights only, as
 * `bios://<run>/sampler_weights/<name>`; `overwrite` as for `save_state`.
 */
export const SaveWeightsForSamplerRequestSchema = z.strictObject({
  type: z.literal("save_weights_for_sampler"),
  ...op,
  name: CheckpointNameSchema,
  overwrite: z.boolean({ error: "must be a boolean" }).default(false),
});

/**
 * Schema of `load_state`: a `weights` checkpoint, with or without its
 * optimizer state, or a PEFT adapter folder (weights only).
 */
export const LoadStateRequestSchema = z.strictObject({
  type: z.literal("load_state"),
  ...op,
  path: TrainingAdapterPathSchema,
  optimizer: z.boolean({ error: "must be a boolean" }),
}).superRefine((r, ctx) => {
  if (r.optimizer && isLocalAdapterPath(r.path)) {
    ctx.addIssue({
      code: "custom",
      path: ["path"],
      message:
        "must be a bios://<run>/weights/<name> checkpoint to load optimizer state (an adapter folder holds weights only: use loadState)",
      input: r.path,
    });
  }
});

/** Schema of `get_info`: a query, so it has no `seq`. */
export const GetInfoRequestSchema = z.strictObject({
  type: z.literal("get_info"),
  runId: RunIdSchema,
});

/**
 * Schema of `snapshot`: the run's current LoRA weights, for an in-memory
 * sampler. A query, so it has no `seq`.
 */
export const SnapshotRequestSchema = z.strictObject({
  type: z.literal("snapshot"),
  runId: RunIdSchema,
});

/** Schema of `sample`: `numSamples` continuations of a non-empty prompt. */
export const SampleRequestSchema = z.strictObject({
  type: z.literal("sample"),
  prompt: NonEmptyModelInputSchema,
  numSamples: safeInteger(
    `must be an integer in [1, ${MAX_NUM_SAMPLES}]`,
    (v) => v >= 1 && v <= MAX_NUM_SAMPLES,
  ),
  samplingParams: SamplingParamsSchema,
  includePromptLogprobs: z.boolean({ error: "must be a boolean" }).default(
    false,
  ),
  topkPromptLogprobs: safeInteger(
    `must be an integer in [0, ${MAX_TOPK_PROMPT_LOGPROBS}] (0 is off)`,
    (v) => v >= 0 && v <= MAX_TOPK_PROMPT_LOGPROBS,
  ).default(0),
  /**
   * Where to tell the tokens as they are drawn (protocol/sample_progress.ts):
   * a `stream.<id>` listener of the client's; absent for no streaming.
   */
  streamTo: z.string({ error: "must be a string" }).regex(
    SAMPLE_STREAM_ADDRESS,
    { error: "must be a sample stream's address, stream.<id>" },
  ).optional(),
});

/** Request types a Trainer actor handles. */
export const TRAINER_REQUEST_TYPES = [
  "forward",
  "forward_backward",
  "optim_step",
  "save_state",
  "save_weights_for_sampler",
  "load_state",
  "get_info",
  "snapshot",
] as const;

/** Trainer request types that are queries: no `seq`, no effect on the run. */
export const TRAINER_QUERY_TYPES = ["get_info", "snapshot"] as const;

/**
 * Schema of what every Trainer request starts with: its type, its run and
 * (for operations) its sequence number. A trainer reads this first, so that
 * a request with a good head but a bad body is still answered in `seq`
 * order; a bad head changes nothing.
 */
export const TrainerRequestHeadSchema = z.looseObject({
  type: z.enum(TRAINER_REQUEST_TYPES, {
    error: typeRule(TRAINER_REQUEST_TYPES),
  }),
  runId: RunIdSchema,
  seq: SeqSchema.optional(),
}, { error: "must be an object with a type" });

/**
 * Schema of `compute_logprobs`: the log-probability of each prompt token
 * given the ones before it.
 */
export const ComputeLogprobsRequestSchema = z.strictObject({
  type: z.literal("compute_logprobs"),
  prompt: NonEmptyModelInputSchema,
});

/** Schema of a sampler's `info` query: what it samples. */
export const SamplerInfoRequestSchema = z.strictObject({
  type: z.literal("info"),
});

/** Request types a Sampler actor handles. */
export const SAMPLER_REQUEST_TYPES = [
  "sample",
  "compute_logprobs",
  "info",
] as const;

/** Schema of any request a Trainer actor handles. */
export const TrainerRequestSchema = z.discriminatedUnion("type", [
  ForwardRequestSchema,
  ForwardBackwardRequestSchema,
  OptimStepRequestSchema,
  SaveStateRequestSchema,
  SaveWeightsForSamplerRequestSchema,
  LoadStateRequestSchema,
  GetInfoRequestSchema,
  SnapshotRequestSchema,
], { error: typeRule(TRAINER_REQUEST_TYPES) });

/** Schema of any request a Sampler actor handles. */
export const SamplerRequestSchema = z.discriminatedUnion("type", [
  SampleRequestSchema,
  ComputeLogprobsRequestSchema,
  SamplerInfoRequestSchema,
], { error: typeRule(SAMPLER_REQUEST_TYPES) });

/** Schema of any protocol request. */
export const ProtocolRequestSchema = z.discriminatedUnion("type", [
  ForwardRequestSchema,
  ForwardBackwardRequestSchema,
  OptimStepRequestSchema,
  SaveStateRequestSchema,
  SaveWeightsForSamplerRequestSchema,
  LoadStateRequestSchema,
  GetInfoRequestSchema,
  SampleRequestSchema,
], {
  error: typeRule([...TRAINER_REQUEST_TYPES, "sample"]),
});

/** A `forward` request, validated. */
export type ForwardRequest = z.output<typeof ForwardRequestSchema>;
/** A `forward_backward` request, validated. */
export type ForwardBackwardRequest = z.output<
  typeof ForwardBackwardRequestSchema
>;
/** An `optim_step` request, validated. */
export type OptimStepRequest = z.output<typeof OptimStepRequestSchema>;
/** A `save_state` request, validated. */
export type SaveStateRequest = z.output<typeof SaveStateRequestSchema>;
/** A `save_weights_for_sampler` request, validated. */
export type SaveWeightsForSamplerRequest = z.output<
  typeof SaveWeightsForSamplerRequestSchema
>;
/** A `load_state` request, validated. */
export type LoadStateRequest = z.output<typeof LoadStateRequestSchema>;
/** A `snapshot` request, validated. */
export type SnapshotRequest = z.output<typeof SnapshotRequestSchema>;
/** A trainer request's head, validated. */
export type TrainerRequestHead = z.output<typeof TrainerRequestHeadSchema>;
/** A `get_info` request, validated. */
export type GetInfoRequest = z.output<typeof GetInfoRequestSchema>;
/** A `sample` request, validated. */
export type SampleRequest = z.output<typeof SampleRequestSchema>;
/** Any request a Trainer actor handles, validated. */
export type TrainerRequest = z.output<typeof TrainerRequestSchema>;
/** Any request a Sampler actor handles, validated. */
export type SamplerRequest = z.output<typeof SamplerRequestSchema>;
/** Any protocol request, validated. */
export type ProtocolRequest = z.output<typeof ProtocolRequestSchema>;
/** Any protocol request as a sender may write it (defaults not yet filled). */
export type ProtocolRequestInput = z.input<typeof ProtocolRequestSchema>;

/** The reply type of each request type. */
export interface ReplyByType {
  /** Reply to `forward`. */
  forward: ForwardBackwardOutput;
  /** Reply to `forward_backward`. */
  "forward_backward": ForwardBackwardOutput;
  /** Reply to `optim_step`. */
  "optim_step": OptimStepResponse;
  /** Reply to `save_state`. */
  "save_state": SaveWeightsResponse;
  /** Reply to `save_weights_for_sampler`. */
  "save_weights_for_sampler": SaveWeightsForSamplerResponse;
  /** Reply to `load_state`. */
  "load_state": LoadWeightsResponse;
  /** Reply to `get_info`. */
  "get_info": GetInfoResponse;
  /** Reply to `sample`. */
  sample: SampleResponse;
}

/** The reply type for request type `T`. */
export type ReplyFor<T extends keyof ReplyByType> = ReplyByType[T];

/** The reply schema of each request type. */
export const REPLY_SCHEMAS: {
  readonly [T in keyof ReplyByType]: z.ZodType<ReplyByType[T]>;
} = {
  forward: ForwardBackwardOutputSchema,
  "forward_backward": ForwardBackwardOutputSchema,
  "optim_step": OptimStepResponseSchema,
  "save_state": SaveWeightsResponseSchema,
  "save_weights_for_sampler": SaveWeightsForSamplerResponseSchema,
  "load_state": LoadWeightsResponseSchema,
  "get_info": GetInfoResponseSchema,
  sample: SampleResponseSchema,
};
