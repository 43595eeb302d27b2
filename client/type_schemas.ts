/**
 * The zod schemas of the user-facing types, as `bios.types.*Schema`: parse a
 * value with them to validate it (with defaults filled in) before sending it.
 * Each is typed explicitly as a {@linkcode Schema} of its type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AdamParamsSchema } from "./type_schemas.ts";
 * assert.equal(AdamParamsSchema.parse({}).beta2, 0.95);
 * ```
 *
 * @module
 */
/**
 * What the exported schemas offer (they are zod schemas; this is the part of
 * zod's interface the public API promises).
 */
export interface Schema<Output> {
  /** Validate `value`, filling defaults; throws a ZodError naming the bad field. */
  parse(value: unknown): Output;
  /** Validate without throwing. */
  safeParse(
    value: unknown,
  ): { success: true; data: Output } | { success: false; error: Error };
}
import * as adam from "../protocol/types/adam_params.ts";
import * as datum from "../protocol/types/datum.ts";
import * as lora from "../protocol/types/lora_config.ts";
import * as loss from "../protocol/types/loss_fn.ts";
import * as mi from "../protocol/types/model_input.ts";
import * as sampling from "../protocol/types/sampling_params.ts";
import * as tensor from "../protocol/types/tensor_data.ts";

/** Schema of a model input: `{ chunks: [{ type: "encoded_text", tokens }] }`. */
export const ModelInputSchema: Schema<mi.ModelInput> = mi.ModelInputSchema;
/** Schema of one chunk of encoded text. */
export const EncodedTextChunkSchema: Schema<mi.EncodedTextChunk> =
  mi.EncodedTextChunkSchema;
/** Schema of a tensor: flat `data`, `dtype` ("int64" | "float32"), optional `shape`. */
export const TensorDataSchema: Schema<tensor.TensorData> =
  tensor.TensorDataSchema;
/** Schema of a training example: `modelInput` plus `lossFnInputs`. */
export const DatumSchema: Schema<datum.Datum> = datum.DatumSchema;
/** Schema of a loss function name. */
export const LossFnTypeSchema: Schema<loss.LossFnType> = loss.LossFnTypeSchema;
/** Schema of AdamW settings; omitted fields take the anchor's defaults. */
export const AdamParamsSchema: Schema<adam.AdamParams> = adam.AdamParamsSchema;
/** Schema of sampling settings; omitted fields take the anchor's defaults. */
export const SamplingParamsSchema: Schema<sampling.SamplingParams> =
  sampling.SamplingParamsSchema;
/** Schema of a LoRA configuration; omitted fields take their defaults. */
export const LoraConfigSchema: Schema<lora.LoraConfig> = lora.LoraConfigSchema;
