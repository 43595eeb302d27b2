/**
 * Training runs and checkpoints on the Tinker wire (the SDK's `TrainingRun`,
 * `Checkpoint`, `Cursor`), both ways: the gateway renders them with the
 * `*Json` functions and the HTTP link reads them back with the `*FromJson`
 * ones, so the two cannot drift. Bios's additions ride as extra keys the
 * SDK ignores: a run's `lora` (alpha, dropout, targets, seed),
 * `created_at`, `step` and `live`; a checkpoint's `step`.
 *
 * @module
 */
import { toBiosPath, toTinkerPath } from "../protocol/tinker/paths.ts";
import type {
  CheckpointListing,
  Cursor,
  TrainingRunSummary,
} from "../protocol/types/training_runs.ts";
import type { Json } from "./tinker_wire.ts";

/** A checkpoint as the wire's `Checkpoint`. */
export function checkpointJson(c: CheckpointListing): Json {
  return {
    "checkpoint_id": c.checkpointId,
    "checkpoint_type": c.kind === "weights" ? "training" : "sampler",
    time: c.createdAt,
    "tinker_path": toTinkerPath(c.path),
    "size_bytes": c.sizeBytes,
    public: false,
    "expires_at": c.expiresAt,
    step: c.step,
  };
}

/** The wire's `Checkpoint` as Bios's listing. */
export function checkpointFromJson(j: Json): CheckpointListing {
  const p = toBiosPath(j.tinker_path, "tinker_path");
  return {
    runId: p.runId,
    kind: p.kind,
    name: p.name,
    checkpointId: `${p.kind}/${p.name}`,
    path: p.path,
    createdAt: j.time as string,
    sizeBytes: (j.size_bytes ?? 0) as number,
    step: (j.step ?? 0) as number,
    expiresAt: (j.expires_at ?? null) as string | null,
  };
}

/** A run as the wire's `TrainingRun`; `owner` when its record names none. */
export function trainingRunJson(r: TrainingRunSummary, owner: string): Json {
  const times = [
    r.createdAt,
    r.lastCheckpoint?.createdAt,
    r.lastSamplerCheckpoint?.createdAt,
  ].filter((t): t is string => typeof t === "string").sort();
  return {
    "training_run_id": r.runId,
    "base_model": r.baseModel,
    "model_owner": r.owner ?? owner,
    "is_lora": true,
    corrupted: false,
    "lora_rank": r.lora.rank,
    "last_request_time": times.at(-1) ?? new Date(0).toISOString(),
    "last_checkpoint": r.lastCheckpoint && checkpointJson(r.lastCheckpoint),
    "last_sampler_checkpoint": r.lastSamplerCheckpoint &&
      checkpointJson(r.lastSamplerCheckpoint),
    // Bios's additions.
    lora: {
      rank: r.lora.rank,
      alpha: r.lora.alpha,
      dropout: r.lora.dropout,
      "target_modules": r.lora.targets,
      seed: r.lora.seed,
    },
    "created_at": r.createdAt,
    step: r.step,
    live: r.live,
  };
}

/** The wire's `TrainingRun` (with Bios's additions) as Bios's summary. */
export function trainingRunFromJson(j: Json): TrainingRunSummary {
  const lora = j.lora as Json;
  const ckpt = (v: unknown) =>
    v === null || v === undefined ? null : checkpointFromJson(v as Json);
  return {
    runId: j.training_run_id as string,
    baseModel: j.base_model as string,
    lora: {
      rank: lora.rank as number,
      alpha: lora.alpha as number,
      dropout: lora.dropout as number,
      targets: lora.target_modules as TrainingRunSummary["lora"]["targets"],
      seed: lora.seed as number,
    },
    createdAt: (j.created_at ?? null) as string | null,
    owner: (j.model_owner ?? null) as string | null,
    step: j.step as number,
    live: j.live as boolean,
    lastCheckpoint: ckpt(j.last_checkpoint),
    lastSamplerCheckpoint: ckpt(j.last_sampler_checkpoint),
  };
}

/** A cursor as the wire's. */
export function cursorJson(c: Cursor): Json {
  return { offset: c.offset, limit: c.limit, "total_count": c.totalCount };
}

/** The wire's cursor as Bios's. */
export function cursorFromJson(j: Json): Cursor {
  return {
    offset: j.offset as number,
    limit: j.limit as number,
    totalCount: j.total_count as number,
  };
}
