/**
 * The record a run leaves beside its checkpoints when it is created
 * (`run.json`): what it was created with, so it is listed before it saves
 * anything and after its trainer is gone.
 *
 * @module
 */

import { z } from "zod";
import { RunIdSchema } from "./checkpoint_path.ts";
import { ManifestLoraSchema } from "./checkpoint_manifest.ts";

/** Schema of a run's record. */
export const RunRecordSchema = z.strictObject({
  runId: RunIdSchema,
  baseModel: z.string({ error: "must be a model name" }).min(1, {
    error: "must be a model name",
  }),
  lora: ManifestLoraSchema,
  createdAt: z.iso.datetime({ error: "must be an ISO 8601 time" }),
}, { error: "must be a run record" });

/** A run's record (see {@link RunRecordSchema}). */
export type RunRecord = z.output<typeof RunRecordSchema>;
