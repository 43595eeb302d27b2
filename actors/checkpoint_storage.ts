/**
 * The seam between the CheckpointStore actor and where checkpoints live.
 * Two storages implement it: the filesystem (`checkpoint_file_storage.ts`,
 * the embedded default: `<root>/<run>/<kind>/<name>/`) and JetStream Object
 * Store (`checkpoint_object_store.ts`, a cluster's: one bucket every node
 * sees). The actor keeps what is common — parsing requests, checking names,
 * fitting an adapter to its base model, PEFT folders on the node's disk —
 * and a storage keeps the promises below.
 *
 * - **Whole or not at all.** A checkpoint exists once its completion record
 *   (written last) is in place; until then no read, listing or `exists`
 *   sees it. An overwrite leaves the old checkpoint loadable until the new
 *   one is complete; a crash at any point leaves the old or the new one.
 * - **Verified on read.** `load` and `info` check the completion record, the
 *   manifest (its sha256, its schema, the path it names) and, for `load`,
 *   every data file's sha256 and tensors before anything is used: a damaged
 *   checkpoint is a CorruptCheckpointError, a missing one a NotFoundError,
 *   both naming the `bios://` path.
 * - **Listing agrees with loading**: exactly the checkpoints whose record
 *   and manifest verify.
 * - **Sidecars** (checkpoint_sidecars.ts): a checkpoint's expiry lives in
 *   its version, outside the manifest (an overwrite starts without one, a
 *   deletion takes it along); a run's record beside its checkpoints. The
 *   storage keeps them; the store decides what an expiry means.
 * - **Faults in the caller's terms**: `storageError` turns what the storage
 *   threw into a StorageError (retryable or not) that names the `bios://`
 *   path, never the node's folders or the server's internals.
 *
 * @module
 */
import type { CheckpointPathParts } from "../protocol/types/checkpoint_path.ts";
import type { CheckpointManifest } from "../protocol/types/checkpoint_manifest.ts";
import type { CheckpointData, LoadedCheckpoint } from "./checkpoint_codec.ts";
import type { StorageOp } from "./storage_fault.ts";
import type { CheckpointListing } from "../protocol/types/training_runs.ts";
import type { RunRecord } from "../protocol/types/run_record.ts";

/** A saved checkpoint as listed (with its expiry, whether past or not). */
export type CheckpointEntry = CheckpointListing;

/** Where a node's checkpoints live (see the module's promises). */
export interface CheckpointStorage {
  /** What and where, for the node's log: `files in /srv/runs`. */
  readonly description: string;
  /**
   * Finish, undo or sweep what crashed saves left (run when the store
   * starts). Never throws: returns one line per problem it could not fix.
   */
  recover(): Promise<string[]>;
  /** Whether a save of `parts` would overwrite something. */
  exists(parts: CheckpointPathParts): Promise<boolean>;
  /**
   * Write a checkpoint whole.
   *
   * @throws {ConflictError} when it exists and `overwrite` is false
   */
  save(
    data: CheckpointData,
    opts: { overwrite: boolean },
  ): Promise<CheckpointManifest>;
  /** Read and verify a checkpoint whole (the optimizer state when asked). */
  load(
    parts: CheckpointPathParts,
    withOptimizer: boolean,
  ): Promise<LoadedCheckpoint>;
  /** A checkpoint's verified manifest. */
  info(parts: CheckpointPathParts): Promise<CheckpointManifest>;
  /** A run's complete checkpoints, oldest first. */
  list(runId: string): Promise<CheckpointEntry[]>;
  /**
   * Delete a checkpoint: it disappears at once and whole (NotFoundError
   * when there is none); its space is freed now or by a later `recover`.
   */
  remove(parts: CheckpointPathParts): Promise<void>;
  /**
   * A checkpoint's expiry (ISO 8601), or null when it has none (or there is
   * no checkpoint).
   */
  expiry(parts: CheckpointPathParts): Promise<string | null>;
  /**
   * Set (a time) or clear (null) a checkpoint's expiry.
   *
   * @throws {NotFoundError} when there is no checkpoint
   */
  setExpiry(
    parts: CheckpointPathParts,
    expiresAt: string | null,
  ): Promise<void>;
  /**
   * Every file of a checkpoint, each verified (see
   * `verifiedCheckpointFiles`): data files, manifest, completion record.
   */
  files(parts: CheckpointPathParts): Promise<Map<string, Uint8Array>>;
  /** Write a run's record (replacing any). */
  putRun(run: RunRecord): Promise<void>;
  /** A run's record, or null when it has none (or an unreadable one). */
  runRecord(runId: string): Promise<RunRecord | null>;
  /** The runs with a record or any checkpoint entry, in no order. */
  runIds(): Promise<string[]>;
  /** `e`, thrown during `op`, as the caller should see it. */
  storageError(e: unknown, op: StorageOp): unknown;
}
