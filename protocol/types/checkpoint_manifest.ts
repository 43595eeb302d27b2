/**
 * What a checkpoint folder records about itself: `manifest.json` (what was
 * saved, and the sha256 of every data file) and `checkpoint_complete` (written
 * last; it holds the sha256 of `manifest.json`, so the pair covers every byte
 * of the checkpoint).
 *
 * Both are parsed strictly: an unknown field, a missing one, or a file entry
 * that is not one of the fixed file names (so never a path such as
 * `"../../x"`) is refused.
 *
 * @module
 */

import { z } from "zod";
import { finiteNumber, safeInteger } from "./checks.ts";
import {
  CHECKPOINT_KINDS,
  CheckpointNameSchema,
  RunIdSchema,
} from "./checkpoint_path.ts";
import { LORA_TARGET_MODULES } from "./lora_config.ts";

/** The manifest format this version writes and reads. */
export const CHECKPOINT_FORMAT = "bios-checkpoint/1";

/** The data files a checkpoint may hold (each hashed in `manifest.json`). */
export const CHECKPOINT_DATA_FILES = [
  "adapter_config.json",
  "adapter_model.safetensors",
  "optimizer.safetensors",
] as const;

/** One data file of a checkpoint. */
export type CheckpointDataFile = typeof CHECKPOINT_DATA_FILES[number];

/** Name of the manifest file. */
export const MANIFEST_FILE = "manifest.json";

/** Name of the completion record, written last. */
export const COMPLETE_FILE = "checkpoint_complete";

const Sha256Schema = z.string({ error: "must be a sha256 in hex" }).regex(
  /^[0-9a-f]{64}$/,
  { error: "must be a sha256 in hex (64 lowercase hex digits)" },
);

const LoraTargetSchema = z.enum(LORA_TARGET_MODULES, {
  error: `must be one of ${LORA_TARGET_MODULES.join(", ")}`,
});

/** Schema of the LoRA settings a checkpoint was trained with. */
export const ManifestLoraSchema = z.strictObject({
  rank: safeInteger("must be an integer ≥ 1", (v) => v >= 1),
  alpha: finiteNumber("must be a finite number > 0", (v) => v > 0),
  dropout: finiteNumber("must be in [0, 1)", (v) => v >= 0 && v < 1),
  targets: z.array(LoraTargetSchema, { error: "must be an array" })
    .min(1, { error: "must name at least 1 module" })
    .refine((t) => new Set(t).size === t.length, {
      error: "must not name a module twice",
      abort: true,
    }),
  seed: safeInteger("must be an integer ≥ 0", (v) => v >= 0),
}, { error: "must be an object of LoRA settings" });

/** Schema of `manifest.json`'s `files`: data file name → sha256. */
export const ManifestFilesSchema = z.strictObject({
  "adapter_config.json": Sha256Schema,
  "adapter_model.safetensors": Sha256Schema,
  "optimizer.safetensors": Sha256Schema.optional(),
}, { error: "must be an object of file name → sha256" });

/**
 * The fields a saver gives about a checkpoint (the store's `save` request
 * carries them); `manifest.json` adds the format, the time and the hashes.
 */
export const SAVED_MANIFEST_FIELDS = {
  runId: RunIdSchema,
  kind: z.enum(CHECKPOINT_KINDS, {
    error: `must be "weights" or "sampler_weights"`,
  }),
  name: CheckpointNameSchema,
  baseModel: z.string({ error: "must be a model name" }).min(1, {
    error: "must be a model name",
  }),
  lora: ManifestLoraSchema,
  step: safeInteger("must be an integer ≥ 0", (v) => v >= 0),
  seq: safeInteger("must be an integer ≥ 0", (v) => v >= 0),
};

/** Schema of `manifest.json`. */
export const CheckpointManifestSchema = z.strictObject({
  format: z.literal(CHECKPOINT_FORMAT, {
    error: `must be "${CHECKPOINT_FORMAT}"`,
  }),
  ...SAVED_MANIFEST_FIELDS,
  createdAt: z.iso.datetime({ error: "must be an ISO 8601 time" }),
  files: ManifestFilesSchema,
}, { error: "must be an object" }).superRefine((m, ctx) => {
  const hasOpt = m.files["optimizer.safetensors"] !== undefined;
  if (m.kind === "weights" && !hasOpt) {
    ctx.addIssue({
      code: "custom",
      path: ["files", "optimizer.safetensors"],
      message: "is required for a weights checkpoint",
    });
  } else if (m.kind === "sampler_weights" && hasOpt) {
    ctx.addIssue({
      code: "custom",
      path: ["files", "optimizer.safetensors"],
      message: "must be absent from a sampler_weights checkpoint",
      input: m.files["optimizer.safetensors"],
    });
  }
});

/** A parsed `manifest.json`. */
export type CheckpointManifest = z.infer<typeof CheckpointManifestSchema>;

/** Schema of `checkpoint_complete`: the sha256 of `manifest.json`'s bytes. */
export const CheckpointCompleteSchema = z.strictObject({
  manifest_sha256: Sha256Schema,
}, { error: "must be an object" });

/** A parsed `checkpoint_complete`. */
export type CheckpointComplete = z.infer<typeof CheckpointCompleteSchema>;
