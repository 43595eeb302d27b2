/**
 * Training runs and checkpoints as listed (the RestClient's answers): a
 * checkpoint's listing entry (with its expiry), a run's summary, a page's
 * cursor, and the TTL a checkpoint may be given.
 *
 * @module
 */

import { z } from "zod";
import type { LoraTargetModule } from "./lora_config.ts";

/** The LoRA settings a run was created with. */
export interface RunLora {
  /** Rank. */
  rank: number;
  /** Scale numerator (the adapter adds `alpha / rank · B·A·x`). */
  alpha: number;
  /** Dropout on the adapter's input while training. */
  dropout: number;
  /** The adapted modules. */
  targets: LoraTargetModule[];
  /** Seed of the adapter's initial weights. */
  seed: number;
}

/** Schema of a checkpoint's lifetime: seconds ≥ 1, or null for no expiry. */
export const TtlSecondsSchema: z.ZodType<number | null> = z.number({
  error: "must be an integer ≥ 1 (seconds) or null",
}).refine((v) => Number.isSafeInteger(v) && v >= 1, {
  error: "must be an integer ≥ 1 (seconds) or null",
  abort: true,
}).nullable();

/** A saved checkpoint as listed. */
export interface CheckpointListing {
  /** Its run. */
  runId: string;
  /** `weights` (with optimizer state) or `sampler_weights`. */
  kind: "weights" | "sampler_weights";
  /** Its name in the run. */
  name: string;
  /** `<kind>/<name>`: the Tinker wire's `checkpoint_id`. */
  checkpointId: string;
  /** `bios://<run>/<kind>/<name>`. */
  path: string;
  /** When it was saved (ISO 8601). */
  createdAt: string;
  /** Bytes of its data files. */
  sizeBytes: number;
  /** The optimizer step it was saved at. */
  step: number;
  /** When it expires (ISO 8601); null: never. */
  expiresAt: string | null;
}

/** A training run as listed. */
export interface TrainingRunSummary {
  /** The run id (the Tinker wire's `training_run_id`). */
  runId: string;
  /** Its base model. */
  baseModel: string;
  /** Its LoRA settings. */
  lora: RunLora;
  /**
   * When it was created (ISO 8601); null for a run known only by its
   * checkpoints (made before runs left a record).
   */
  createdAt: string | null;
  /**
   * The gateway tenant whose key created it (the Tinker wire's
   * `model_owner`); null for a run made without a gateway.
   */
  owner: string | null;
  /**
   * Optimizer steps taken: the trainer's count while it runs, else the step
   * of its newest checkpoint (0 without one).
   */
  step: number;
  /** Whether its trainer answers now. */
  live: boolean;
  /** Its newest `weights` checkpoint, if any. */
  lastCheckpoint: CheckpointListing | null;
  /** Its newest `sampler_weights` checkpoint, if any. */
  lastSamplerCheckpoint: CheckpointListing | null;
}

/** A page of a listing: where it starts, its size, and how many there are. */
export interface Cursor {
  /** Items skipped. */
  offset: number;
  /** Most items asked for. */
  limit: number;
  /** Items there are in all. */
  totalCount: number;
}
