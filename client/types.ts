/**
 * The user-facing data types of Bios, as `bios.types`: zod schemas, the
 * TypeScript types inferred from them, and helpers such as
 * `ModelInput.fromInts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import * as types from "./types.ts";
 * const prompt = types.ModelInput.fromInts([1, 2, 3]);
 * assert.equal(types.ModelInput.length(prompt), 3);
 * ```
 *
 * @module
 */

export {
  type EncodedTextChunk,
  EncodedTextChunkSchema,
  ModelInput,
  ModelInputSchema,
} from "../protocol/types/model_input.ts";
export {
  type TensorData,
  tensorData,
  TensorDataSchema,
  type TensorDtype,
} from "../protocol/types/tensor_data.ts";
export {
  type Datum,
  type DatumInput,
  DatumSchema,
  type LossInputValue,
} from "../protocol/types/datum.ts";
export {
  LOSS_FN_TYPES,
  type LossFnConfig,
  type LossFnType,
  LossFnTypeSchema,
} from "../protocol/types/loss_fn.ts";
export {
  type AdamParams,
  type AdamParamsInput,
  AdamParamsSchema,
  DEFAULT_ADAM_PARAMS,
} from "../protocol/types/adam_params.ts";
export {
  MAX_SAMPLING_TOKENS,
  type SamplingParams,
  type SamplingParamsInput,
  SamplingParamsSchema,
} from "../protocol/types/sampling_params.ts";
export {
  type CreateLoraTrainingClientOptions,
  type CreateLoraTrainingClientOptionsInput,
  CreateLoraTrainingClientOptionsSchema,
  LORA_TARGET_MODULES,
  type LoraConfig,
  type LoraConfigInput,
  LoraConfigSchema,
  type LoraTargetModule,
} from "../protocol/types/lora_config.ts";
export {
  type ForwardBackwardOutput,
  type GetInfoResponse,
  type GetServerCapabilitiesResponse,
  type LoadWeightsResponse,
  type Metrics,
  type OptimStepResponse,
  type SampledSequence,
  type SampleResponse,
  type SaveWeightsForSamplerResponse,
  type SaveWeightsResponse,
  type SupportedModel,
  type WeightsInfoResponse,
} from "../protocol/types/responses.ts";
export {
  type CheckpointKind,
  checkpointPath,
  type CheckpointPathParts,
  parseCheckpointPath,
  validateCheckpointName,
} from "../protocol/types/checkpoint_path.ts";
