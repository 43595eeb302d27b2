/**
 * The user-facing data types of Bios, as `bios.types`: the shapes of
 * requests and replies, and helpers such as `ModelInput.fromInts`. (The zod
 * schemas that check these live in `protocol/`.)
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

export type { NumericArray } from "../protocol/types/checks.ts";
export {
  type EncodedTextChunk,
  ModelInput,
} from "../protocol/types/model_input.ts";
export {
  TENSOR_DTYPES,
  type TensorData,
  tensorData,
  type TensorDtype,
} from "../protocol/types/tensor_data.ts";
export type {
  Datum,
  DatumInput,
  LossInputValue,
} from "../protocol/types/datum.ts";
export {
  LOSS_FN_TYPES,
  LOSS_INPUT_KEYS,
  type LossFnConfig,
  type LossFnType,
  type LossInputKey,
} from "../protocol/types/loss_fn.ts";
export {
  type AdamParams,
  type AdamParamsInput,
  DEFAULT_ADAM_PARAMS,
} from "../protocol/types/adam_params.ts";
export {
  MAX_SAMPLING_TOKENS,
  type SamplingParams,
  type SamplingParamsInput,
} from "../protocol/types/sampling_params.ts";
export {
  type CreateLoraTrainingClientOptions,
  type CreateLoraTrainingClientOptionsInput,
  LORA_TARGET_MODULES,
  type LoraConfig,
  type LoraConfigInput,
  type LoraTargetModule,
} from "../protocol/types/lora_config.ts";
export type {
  ForwardBackwardOutput,
  GetInfoResponse,
  GetServerCapabilitiesResponse,
  LoadWeightsResponse,
  Metrics,
  OptimStepResponse,
  SampledSequence,
  SampleResponse,
  SaveWeightsForSamplerResponse,
  SaveWeightsResponse,
  SupportedModel,
  WeightsInfoResponse,
} from "../protocol/types/responses.ts";
export {
  CHECKPOINT_KINDS,
  type CheckpointKind,
  checkpointPath,
  type CheckpointPathParts,
  parseCheckpointPath,
  validateCheckpointName,
} from "../protocol/types/checkpoint_path.ts";
export * from "./type_schemas.ts";
