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

/**
 * The form of an owner's name: a gateway tenant's (1–64 characters of
 * A–Z, a–z, 0–9, `_`, `.` or `-`).
 */
export const OWNER_RE: RegExp = /^[A-Za-z0-9_.-]{1,64}$/;

/** Schema of a run's owner: the gateway tenant whose key created it. */
export const OwnerSchema = z.string({ error: "must be a tenant's name" })
  .regex(OWNER_RE, {
    error: "must be 1–64 characters of A–Z, a–z, 0–9, _, . or -",
  });

/** Schema of a run's record. */
export const RunRecordSchema = z.strictObject({
  runId: RunIdSchema,
  baseModel: z.string({ error: "must be a model name" }).min(1, {
    error: "must be a model name",
  }),
  lora: ManifestLoraSchema,
  createdAt: z.iso.datetime({ error: "must be an ISO 8601 time" }),
  /**
   * The gateway tenant that created it (its key's); absent for a run a
   * client made without a gateway. Kept here, beside its checkpoints, so
   * that it stays its tenant's across a restart of the gateway.
   */
  owner: OwnerSchema.optional(),
}, { error: "must be a run record" });

/** A run's record (see {@link RunRecordSchema}). */
export type RunRecord = z.output<typeof RunRecordSchema>;
