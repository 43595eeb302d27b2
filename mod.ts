/**
 * Bios: LoRA fine-tuning with a minimal, composable API. Write a plain
 * training loop; Bios runs it on actors (trainer, parameter shards, samplers)
 * in this process or on a cluster.
 *
 * @example
 * ```ts ignore
 * import * as bios from "./mod.ts";
 * const service = new bios.ServiceClient();
 * const tc = await service.createLoraTrainingClient({ baseModel: "ultrasafe/usf-finance", rank: 16 });
 * const tok = await tc.getTokenizer();
 * const ids = tok.encode("Q: 2+2?\nA: 4");
 * const datum = {
 *   modelInput: bios.types.ModelInput.fromInts(ids.slice(0, -1)),
 *   lossFnInputs: { targetTokens: ids.slice(1), weights: ids.slice(1).map(() => 1) },
 * };
 * const fb = tc.forwardBackward([datum], "cross_entropy");
 * const opt = tc.optimStep({ learningRate: 1e-3 });
 * console.log((await fb).loss, await opt);
 * await service.close();
 * ```
 *
 * @module
 */
export {
  ServiceClient,
  type ServiceClientOptions,
} from "./client/service_client.ts";
export {
  type CustomLossFn,
  type TrainingClient,
  type TrainingRunInfo,
  type TrainResult,
} from "./client/training_client.ts";
export {
  type SampleArgs,
  type SamplingClient,
} from "./client/sampling_client.ts";
export { APIFuture, FutureTimeoutError } from "./client/api_future.ts";
export type { ArchiveUrl, SamplerInfo, WeightsInfo } from "./client/link.ts";
export type {
  SampleProgress,
  SequenceProgress,
} from "./protocol/sample_progress.ts";
export {
  type CheckpointsPage,
  RestClient,
  type TrainingRunsPage,
} from "./client/rest_client.ts";
export type {
  CheckpointListing,
  Cursor,
  RunLora,
  TrainingRunSummary,
} from "./protocol/types/training_runs.ts";
export * as types from "./client/types.ts";
export * as chat from "./client/chat.ts";
export * from "./runtime/mod.ts";
export type {
  DecodeOptions,
  EncodeOptions,
  Tokenizer,
} from "./protocol/types/tokenizer.ts";
export * from "./client/types.ts";
export * from "./client/connection.ts";
export {
  type MetricsLine,
  MetricsLog,
  StepMetrics,
  type WeightedDatum,
} from "./client/metrics_log.ts";
export {
  mergeAdapter,
  type MergeAdapterOptions,
  type MergeAdapterResult,
} from "./client/merge.ts";
