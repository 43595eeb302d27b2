/**
 * Requests a client sends to a node's Registry: one discriminated union on
 * `type`, parsed once where it arrives (the registry), so that no message
 * can crash it.
 *
 * @module
 */

import { z } from "zod";
import { CheckpointPathSchema, RunIdSchema } from "./types/checkpoint_path.ts";
import { TtlSecondsSchema } from "./types/training_runs.ts";
import { OwnerSchema } from "./types/run_record.ts";
import { ownKeysChecked } from "./types/checks.ts";
import { LORA_TARGET_MODULES } from "./types/lora_config.ts";
import { AdapterPathSchema, isLocalAdapterPath } from "./types/adapter_path.ts";

/** Longest model name accepted. */
export const MAX_MODEL_NAME_LENGTH = 256;

/** Schema of a model name (a catalog key such as `ultrasafe/usf-finance`). */
export const ModelNameSchema = z.string({ error: "must be a model name" })
  .min(1, { error: "must be a model name" })
  .max(MAX_MODEL_NAME_LENGTH, {
    error:
      `must be a model name of at most ${MAX_MODEL_NAME_LENGTH} characters`,
  });

/** Schema of a sampler id, as the registry hands them out. */
export const SamplerIdSchema = z.string({ error: "must be a sampler id" })
  .regex(/^smp-[A-Za-z0-9-]{1,64}$/, { error: "must be a sampler id" });

const positiveInt = (what: string) =>
  z.number({ error: `must be ${what}` }).refine(
    (v) => Number.isSafeInteger(v) && v >= 1,
    { error: `must be ${what}`, abort: true },
  );

/**
 * Schema of a LoRA snapshot handed to a new sampler (a run's current
 * weights): its settings and its tensors, each a shape and float32 data of
 * that size. Whether they fit the base model is checked by the sampler.
 */
export const LoraSnapshotSchema = z.strictObject({
  spec: z.strictObject({
    rank: positiveInt("an integer ≥ 1"),
    alpha: z.number().refine(Number.isFinite, { error: "must be finite" }),
    dropout: z.number().min(0).max(1),
    targets: z.array(z.enum(LORA_TARGET_MODULES)).min(1),
    seed: z.number().refine(Number.isSafeInteger, {
      error: "must be an integer",
    }),
  }),
  params: ownKeysChecked(
    z.record(
      z.string(),
      z.strictObject({
        shape: z.array(positiveInt("a dimension ≥ 1")).length(2),
        data: z.instanceof(Float32Array, { error: "must be a Float32Array" }),
      }).refine((t) => t.data.length === t.shape[0] * t.shape[1], {
        error: "must hold shape[0] · shape[1] values",
      }),
    ),
    "is not a tensor name",
  ),
});

/** A LoRA snapshot as a trainer hands it out and a new sampler takes it. */
export type LoraSnapshot = z.output<typeof LoraSnapshotSchema>;

/**
 * Schema of `create_sampler`: from a checkpoint or a PEFT adapter folder
 * (`modelPath`; a folder may say its `baseModel`), or a base model with an
 * optional LoRA snapshot (a run's current weights).
 */
export const CreateSamplerRequestSchema = z.strictObject({
  type: z.literal("create_sampler"),
  modelPath: AdapterPathSchema.optional(),
  baseModel: ModelNameSchema.optional(),
  lora: LoraSnapshotSchema.optional(),
}).superRefine((r, ctx) => {
  const folder = isLocalAdapterPath(r.modelPath);
  if (folder && r.lora !== undefined) {
    ctx.addIssue({
      code: "custom",
      message: "comes with baseModel only (an adapter folder has its own)",
      path: ["lora"],
      input: r.lora,
    });
  } else if (folder) {
    // A folder's baseModel is optional: its own config may name it.
  } else if ((r.modelPath === undefined) === (r.baseModel === undefined)) {
    ctx.addIssue({
      code: "custom",
      message: "or baseModel must be given, and only one of them",
      path: ["modelPath"],
      input: r.modelPath,
    });
  } else if (r.lora !== undefined && r.baseModel === undefined) {
    ctx.addIssue({
      code: "custom",
      message: "comes with baseModel only (a checkpoint has its own)",
      path: ["lora"],
      input: r.lora,
    });
  }
});

/** Schema of any request a Registry handles. */
export const RegistryRequestSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("capabilities") }),
  z.strictObject({
    type: z.literal("create_run"),
    options: z.unknown(),
    // The gateway tenant creating it, recorded with the run.
    owner: OwnerSchema.optional(),
  }),
  CreateSamplerRequestSchema,
  z.strictObject({ type: z.literal("tokenizer"), baseModel: ModelNameSchema }),
  z.strictObject({
    type: z.literal("weights_info"),
    path: AdapterPathSchema,
    baseModel: ModelNameSchema.optional(),
  }),
  z.strictObject({ type: z.literal("list_checkpoints"), runId: RunIdSchema }),
  z.strictObject({ type: z.literal("list_runs") }),
  z.strictObject({ type: z.literal("get_run"), runId: RunIdSchema }),
  z.strictObject({
    type: z.literal("delete_checkpoint"),
    path: CheckpointPathSchema,
  }),
  z.strictObject({
    type: z.literal("set_checkpoint_ttl"),
    path: CheckpointPathSchema,
    ttlSeconds: TtlSecondsSchema,
  }),
  z.strictObject({
    type: z.literal("checkpoint_files"),
    path: CheckpointPathSchema,
  }),
  z.strictObject({
    type: z.literal("stop_sampler"),
    samplerId: SamplerIdSchema,
  }),
  z.strictObject({ type: z.literal("members") }),
], {
  error:
    'must be one of "capabilities", "create_run", "create_sampler", "tokenizer", "weights_info", "list_checkpoints", "list_runs", "get_run", "delete_checkpoint", "set_checkpoint_ttl", "checkpoint_files", "stop_sampler", "members"',
});

/** Any request a Registry handles, validated. */
export type RegistryRequest = z.output<typeof RegistryRequestSchema>;
