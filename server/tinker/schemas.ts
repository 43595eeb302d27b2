/**
 * Zod schemas of the Tinker wire's request bodies (SDK 0.24, JSON), as the
 * official SDK sends them: snake_case, `None` fields omitted, a `type`
 * literal on most (ignored here; unknown keys are dropped so that a newer
 * SDK's additions do not break an older gateway).
 *
 * They live in server/, not protocol/: protocol/ is the actors' contract,
 * written once and shared by every client; this is one edge's dialect of it.
 * Each operation is parsed in two steps. Its *head* (`model_id`, `seq_id`,
 * `session_id`, …) is parsed at once and a bad head is a 400; its *body* is
 * converted to Bios's protocol message (server/tinker/to_bios.ts) and checked
 * there with protocol/'s schemas, so that a bad body becomes the operation's
 * failure (a `RequestFailedError` in the SDK), in `seq_id` order.
 *
 * @module
 */
import { z } from "zod";
import { safeInteger } from "../../protocol/types/checks.ts";

/** Longest id (session, model, request, sampling session) accepted. */
export const MAX_ID_LENGTH = 200;

/** Schema of an id the gateway handed out (session, model, sampler, request). */
export const WireIdSchema = z.string({ error: "must be a string id" })
  .min(1, { error: "must be a non-empty string id" })
  .max(MAX_ID_LENGTH, {
    error: `must be an id of at most ${MAX_ID_LENGTH} characters`,
  });

/** Schema of an SDK counter that starts at 0 (`model_seq_id`, `sampling_session_seq_id`). */
export const SeqFromZeroSchema = safeInteger(
  "must be an integer ≥ 0",
  (v) => v >= 0,
);

/** Schema of a training operation's `seq_id`: an integer ≥ 1. */
export const SeqIdSchema = safeInteger("must be an integer ≥ 1", (v) => v >= 1);

/** Schema of `create_session`. */
export const CreateSessionSchema = z.object({
  tags: z.array(z.string({ error: "must be a string" }), {
    error: "must be an array of strings",
  }).max(64, { error: "must have at most 64 tags" }).optional(),
  "user_metadata": z.record(z.string(), z.unknown(), {
    error: "must be an object",
  }).nullish(),
  "sdk_version": z.string({ error: "must be a string" }).max(64).optional(),
  "project_id": z.string({ error: "must be a string" }).max(MAX_ID_LENGTH)
    .nullish(),
}, { error: "must be a JSON object" });

/** Schema of `session_heartbeat`. */
export const SessionHeartbeatSchema = z.object({
  "session_id": WireIdSchema,
}, { error: "must be a JSON object" });

/** Schema of `create_model`'s head; `base_model` and `lora_config` are its body. */
export const CreateModelSchema = z.object({
  "session_id": WireIdSchema,
  "model_seq_id": SeqFromZeroSchema,
  "base_model": z.unknown(),
  "lora_config": z.unknown().optional(),
  "user_metadata": z.unknown().optional(),
}, { error: "must be a JSON object" });

/**
 * Schema of `create_model`'s `lora_config`: Tinker's LoraConfig (no alpha),
 * plus Bios's `alpha`, `dropout` and `target_modules`, which Bios's own
 * client sends (the values are checked by the protocol's schema).
 */
export const WireLoraConfigSchema = z.strictObject({
  rank: z.unknown().optional(),
  seed: z.unknown().optional(),
  "train_unembed": z.unknown().optional(),
  "train_mlp": z.unknown().optional(),
  "train_attn": z.unknown().optional(),
  alpha: z.unknown().optional(),
  dropout: z.unknown().optional(),
  "target_modules": z.unknown().optional(),
}, { error: "must be an object of LoRA settings (rank, seed, train_*)" });

/** Schema of a request naming a model only (`get_info`, `unload_model`). */
export const ModelIdSchema = z.object({
  "model_id": WireIdSchema,
}, { error: "must be a JSON object" });

/** Schema of every training operation's head: the run and the op's place in its order. */
export const OpHeadSchema = z.object({
  "model_id": WireIdSchema,
  "seq_id": SeqIdSchema,
}, { error: "must be a JSON object" });

/** A training operation's head, parsed. */
export type OpHead = z.output<typeof OpHeadSchema>;

/** Schema of `forward_backward_input` (and `forward_input`): the batch and its loss. */
export const ForwardBackwardInputSchema = z.object({
  data: z.array(z.unknown(), { error: "must be an array of Datum" }),
  "loss_fn": z.unknown(),
  "loss_fn_config": z.record(z.string(), z.unknown(), {
    error: "must be an object of numbers",
  }).nullish(),
}, { error: "must be an object { data, loss_fn, loss_fn_config? }" });

/** Schema of `optim_step`'s body. */
export const OptimStepBodySchema = z.object({
  "adam_params": z.record(z.string(), z.unknown(), {
    error: "must be an object of Adam settings",
  }),
}, { error: "must be a JSON object" });

/** Schema of `save_weights`'s body: `path` is the checkpoint's name. */
export const SaveWeightsBodySchema = z.object({
  path: z.unknown(),
  overwrite: z.boolean({ error: "must be a boolean" }).optional(),
  "ttl_seconds": z.unknown().optional(),
}, { error: "must be a JSON object" });

/**
 * Schema of `save_weights_for_sampler`'s body: a named save (`path`), or,
 * without one, an ephemeral snapshot for a new sampling session.
 */
export const SaveForSamplerBodySchema = z.object({
  path: z.unknown().optional(),
  overwrite: z.boolean({ error: "must be a boolean" }).optional(),
  "sampling_session_seq_id": z.unknown().optional(),
  "ttl_seconds": z.unknown().optional(),
}, { error: "must be a JSON object" });

/** Schema of `load_weights`'s body. */
export const LoadWeightsBodySchema = z.object({
  path: z.unknown(),
  optimizer: z.boolean({ error: "must be a boolean" }),
  "weights_access_token": z.unknown().optional(),
}, { error: "must be a JSON object" });

/** Schema of `create_sampling_session`. */
export const CreateSamplingSessionSchema = z.object({
  "session_id": WireIdSchema,
  "sampling_session_seq_id": SeqFromZeroSchema,
  "base_model": z.string({ error: "must be a model name" }).nullish(),
  "model_path": z.string({ error: "must be a tinker:// path" }).nullish(),
  /** Bios's addition: a sampler of this run's current weights (in memory). */
  "model_id": WireIdSchema.nullish(),
}, { error: "must be a JSON object" });

/** Schema of `unload_sampling_session` (Bios's addition). */
export const SamplingSessionIdSchema = z.object({
  "sampling_session_id": WireIdSchema,
}, { error: "must be a JSON object" });

/** Schema of `get_tokenizer` (Bios's addition). */
export const GetTokenizerSchema = z.object({
  "base_model": z.string({ error: "must be a model name" }).min(1, {
    error: "must be a model name",
  }),
}, { error: "must be a JSON object" });

/** Schema of `asample`'s head: where to sample from. */
export const SampleHeadSchema = z.object({
  "sampling_session_id": WireIdSchema.nullish(),
  "seq_id": safeInteger("must be an integer ≥ 0", (v) => v >= 0).nullish(),
  "base_model": z.string({ error: "must be a model name" }).nullish(),
  "model_path": z.string({ error: "must be a tinker:// path" }).nullish(),
}, { error: "must be a JSON object" });

/** Schema of `asample`'s body: what to sample. */
export const SampleBodySchema = z.object({
  prompt: z.unknown(),
  "sampling_params": z.record(z.string(), z.unknown(), {
    error: "must be an object of sampling settings",
  }),
  "num_samples": z.unknown().optional(),
  "prompt_logprobs": z.boolean({ error: "must be a boolean" }).nullish(),
  "topk_prompt_logprobs": z.unknown().optional(),
}, { error: "must be a JSON object" });

/** Schema of `retrieve_future`. */
export const RetrieveFutureSchema = z.object({
  "request_id": WireIdSchema,
  "allow_metadata_only": z.boolean({ error: "must be a boolean" }).optional(),
}, { error: "must be a JSON object" });

/** Schema of `weights_info`. */
export const WeightsInfoSchema = z.object({
  "tinker_path": z.string({ error: "must be a tinker:// path" }),
}, { error: "must be a JSON object" });
