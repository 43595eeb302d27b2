/**
 * The seam under the client classes: what `ServiceClient`, `TrainingClient`
 * and `SamplingClient` need from a deployment, as a few calls. Two links
 * implement it — {@linkcode ActorLink} (client/actor_link.ts: the actors
 * themselves, over the in-process or the NATS transport) and `HttpLink`
 * (client/http_link.ts: the gateway's Tinker wire) — so one set of client
 * classes, with one set of argument checks, serves all three deployments.
 *
 * The seam sits above the transport, not at it: the gateway does not carry
 * actor messages but the Tinker wire's operations, so each call here is one
 * such operation (a run's op at its seq, a sample, a weights query), and
 * each link maps it onto its own wire.
 *
 * @module
 */
import type { CreateLoraTrainingClientOptionsInput } from "../protocol/types/lora_config.ts";
import type { ModelInput } from "../protocol/types/model_input.ts";
import type { SamplingParams } from "../protocol/types/sampling_params.ts";
import type { SampleProgress } from "../protocol/sample_progress.ts";
import type {
  GetServerCapabilitiesResponse,
  SampleResponse,
} from "../protocol/types/responses.ts";
import type {
  CheckpointListing,
  Cursor,
  TrainingRunSummary,
} from "../protocol/types/training_runs.ts";

/**
 * A checked trainer operation as a link carries it: its type, run and seq,
 * and the fields its type's schema gave it (client/trainer_op.ts has the
 * exact union, which the links narrow to).
 */
export interface TrainerOp {
  /** The operation, e.g. `"forward_backward"`. */
  readonly type: string;
  /** The run it belongs to. */
  readonly runId: string;
  /** Its place in the run's order. */
  readonly seq?: number;
}

/** A checked `sample` request. */
export interface SampleRequest {
  /** Always `"sample"`. */
  type: "sample";
  /** The prompt. */
  prompt: ModelInput;
  /** Sequences to draw. */
  numSamples: number;
  /** How to draw them (defaults filled in). */
  samplingParams: SamplingParams;
  /** Whether to return the prompt's logprobs. */
  includePromptLogprobs: boolean;
  /** The k likeliest tokens at each prompt position (0: none). */
  topkPromptLogprobs: number;
  /** Where the sampler tells the tokens as they come (set by the link). */
  streamTo?: string;
}

/** A checked `compute_logprobs` request. */
export interface ComputeLogprobsRequest {
  /** Always `"compute_logprobs"`. */
  type: "compute_logprobs";
  /** The prompt. */
  prompt: ModelInput;
}

/** What a checkpoint (or PEFT adapter folder) holds. */
export interface WeightsInfo {
  /** Its base model. */
  baseModel: string;
  /** LoRA rank. */
  loraRank: number;
  /** LoRA alpha. */
  loraAlpha: number;
  /** The adapted modules. */
  targetModules: string[];
  /** What kind of checkpoint it is. */
  kind: "weights" | "sampler_weights" | "peft_adapter";
  /** The optimizer step it was saved at. */
  step: number;
}

/** A run's model, rank, step and sequence state (TrainingClient.getInfo). */
export interface TrainingRunInfo {
  /** The run id. */
  modelId: string;
  /** The base model. */
  modelName: string;
  /** Always true: Bios trains LoRA adapters. */
  isLora: true;
  /** The adapter's rank. */
  loraRank: number;
  /** Architecture and names, as the anchor's GetInfoResponse. */
  modelData: { arch: string; modelName: string; tokenizerId?: string };
  /** Optimizer steps taken. */
  step: number;
  /** Last sequence number applied. */
  lastSeq: number;
  /** Bumped whenever the weights change. */
  version: number;
  /** Pipeline stages (parameter shards) of the run. */
  shards: number;
}

/** What a sampler samples. */
export interface SamplerInfo {
  /** Its id. */
  samplerId: string;
  /** Its base model. */
  baseModel: string;
  /** The checkpoint it loaded, if any. */
  modelPath?: string;
}

/** One sampler, as a link reaches it. */
export interface SamplerLink {
  /** What it samples. */
  readonly info: SamplerInfo;
  /**
   * Generate (a checked request). With `onTokens`, a link that can stream
   * passes on the tokens as the sampler draws them (possibly a message
   * lost, or one repeated after a resend: client/sample_stream.ts sorts
   * that out); one that cannot calls it never.
   */
  sample(
    req: SampleRequest,
    onTokens?: (progress: SampleProgress) => void,
  ): Promise<SampleResponse>;
  /** Prompt logprobs (a checked request). */
  computeLogprobs(req: ComputeLogprobsRequest): Promise<(number | null)[]>;
  /** Stop it and free its memory; one that is gone already counts as stopped. */
  stop(): Promise<void>;
  /** Stop it without waiting (a collected client's), ignoring failures. */
  release(): void;
}

/** One training run, as a link reaches it. */
export interface RunLink {
  /**
   * Send a checked operation carrying its seq, exactly once: a resend (a
   * restarted trainer, a dropped connection) is answered from the trainer's
   * record, never applied twice. `before` is the previous operation, settled
   * with its resends: a resend goes only after it.
   */
  submit<T>(req: TrainerOp, before: Promise<unknown>): Promise<T>;
  /** The run's model, rank, step and sequence state. */
  getInfo(): Promise<TrainingRunInfo>;
  /** A new sampler of the run's current weights, held in memory only. */
  snapshotSampler(): Promise<SamplerLink>;
}

/** A page of a listing: at most `limit` items after the first `offset`. */
export interface Page {
  /** Most items. */
  limit: number;
  /** Items skipped. */
  offset: number;
}

/** Where an archive of a checkpoint's files can be fetched. */
export interface ArchiveUrl {
  /** `http(s)://…` (the gateway's) or `file://…` (a local file). */
  url: string;
  /** When the URL stops working; null when it does not (a local file). */
  expires: Date | null;
}

/**
 * The RestClient's calls (client/rest_client.ts), as a deployment carries
 * them: runs and checkpoints listed, a checkpoint deleted, its expiry set,
 * its files archived.
 */
export interface RestLink {
  /** A page of the runs, newest first. */
  listTrainingRuns(
    page: Page,
  ): Promise<{ trainingRuns: TrainingRunSummary[]; cursor: Cursor }>;
  /** One run. */
  getTrainingRun(runId: string): Promise<TrainingRunSummary>;
  /** A run's checkpoints, oldest first. */
  listCheckpoints(runId: string): Promise<CheckpointListing[]>;
  /** A page of the caller's checkpoints (of all its runs), newest first. */
  listUserCheckpoints(
    page: Page,
  ): Promise<{ checkpoints: CheckpointListing[]; cursor: Cursor }>;
  /** Delete a checkpoint. */
  deleteCheckpoint(path: string): Promise<void>;
  /** Set (seconds from now) or clear (null) a checkpoint's expiry. */
  setCheckpointTtl(path: string, ttlSeconds: number | null): Promise<void>;
  /** Where an archive (ustar) of a checkpoint's verified files is. */
  checkpointArchiveUrl(path: string): Promise<ArchiveUrl>;
}

/** A deployment, as the client classes reach it. */
export interface Link {
  /** The RestClient's calls. */
  rest(): RestLink;
  /** The served models and the compute backend. */
  capabilities(): Promise<
    GetServerCapabilitiesResponse & { backendReason?: string }
  >;
  /**
   * Start a run; resolves with its id and base model. `owner` (a gateway's
   * tenant, kept in the run's record) is for a link over the actors; a
   * link through a gateway is given its key's tenant there.
   */
  createRun(
    options: CreateLoraTrainingClientOptionsInput,
    owner?: string,
  ): Promise<{ runId: string; baseModel: string }>;
  /** The run `runId` (nothing is sent). */
  run(runId: string): RunLink;
  /** Start a sampler of a checkpoint, an adapter folder or a base model. */
  createSampler(
    from: { modelPath?: string; baseModel?: string },
  ): Promise<SamplerLink>;
  /** What a checkpoint holds. */
  weightsInfo(path: string, baseModel?: string): Promise<WeightsInfo>;
  /** A base model's tokenizer files and hints. */
  tokenizer(
    baseModel: string,
  ): Promise<{ files: Record<string, string>; hints: Record<string, unknown> }>;
  /** Disconnect (and stop an embedded node). */
  close(): Promise<void>;
}
