/**
 * Requests to a node's CheckpointStore (from trainers and the registry):
 * one discriminated union on `type`, parsed where it arrives.
 *
 * @module
 */

import { z } from "zod";
import { CheckpointPathSchema, RunIdSchema } from "./types/checkpoint_path.ts";
import { SAVED_MANIFEST_FIELDS } from "./types/checkpoint_manifest.ts";
import { AdapterPathSchema } from "./types/adapter_path.ts";
import { ModelNameSchema } from "./registry_messages.ts";
import { WireTensorsSchema } from "./types/wire_tensors.ts";
import { TtlSecondsSchema } from "./types/training_runs.ts";
import { RunRecordSchema } from "./types/run_record.ts";

const bool = z.boolean({ error: "must be a boolean" });

/**
 * Schema of what a saver says about a checkpoint; the store adds the
 * format, the time and the files' hashes to make `manifest.json`.
 */
export const SaveManifestSchema = z.strictObject(SAVED_MANIFEST_FIELDS);

/** Schema of any request the store handles. */
export const StoreRequestSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("save"),
    overwrite: bool,
    manifest: SaveManifestSchema,
    params: WireTensorsSchema,
    m: WireTensorsSchema.optional(),
    v: WireTensorsSchema.optional(),
  }),
  // `path` may name a PEFT adapter folder on the node's disk; `baseModel`
  // then says which model it is loaded onto (a checkpoint names its own).
  z.strictObject({
    type: z.literal("load"),
    path: AdapterPathSchema,
    optimizer: bool,
    forTraining: bool,
    baseModel: ModelNameSchema.optional(),
  }),
  z.strictObject({
    type: z.literal("info"),
    path: AdapterPathSchema,
    baseModel: ModelNameSchema.optional(),
  }),
  z.strictObject({ type: z.literal("list"), runId: RunIdSchema }),
  // Delete a checkpoint (whole, at once).
  z.strictObject({ type: z.literal("delete"), path: CheckpointPathSchema }),
  // Set (seconds from now) or clear (null) a checkpoint's expiry.
  z.strictObject({
    type: z.literal("set_ttl"),
    path: CheckpointPathSchema,
    ttlSeconds: TtlSecondsSchema,
  }),
  // A checkpoint's files, each verified against its sha256 (an archive's).
  z.strictObject({ type: z.literal("files"), path: CheckpointPathSchema }),
  // Record a new run (the registry, when it creates one).
  z.strictObject({ type: z.literal("put_run"), run: RunRecordSchema }),
  // The runs with a record or a checkpoint (or only `runId`).
  z.strictObject({
    type: z.literal("list_runs"),
    runId: RunIdSchema.optional(),
  }),
], {
  error:
    'must be one of "save", "load", "info", "list", "delete", "set_ttl", "files", "put_run", "list_runs"',
});

/** Any request the store handles, validated. */
export type StoreRequest = z.output<typeof StoreRequestSchema>;
