/**
 * The small records a storage keeps beside checkpoints, outside their
 * manifests (whose schema is strict and whose sha256 the completion record
 * holds, so neither changes after a save):
 *
 * - `expires_at.json` in a checkpoint's version (its folder on disk, its
 *   version folder in the object store): `{ "expires_at": "<ISO 8601>" }`.
 *   It belongs to that save: an overwrite starts without one, a deletion
 *   takes it along.
 * - `run.json` in a run's folder (`<run>/run.json`): the run's record
 *   ({@link RunRecord}), written when the run is created.
 *
 * Also the reader of a checkpoint's files for an archive: every file
 * verified, the record and manifest as they were verified.
 *
 * @module
 */
import { z } from "zod";
import { parseOrThrow } from "../protocol/parse.ts";
import type { CheckpointPathParts } from "../protocol/types/checkpoint_path.ts";
import {
  CHECKPOINT_DATA_FILES,
  COMPLETE_FILE,
  MANIFEST_FILE,
} from "../protocol/types/checkpoint_manifest.ts";
import {
  type RunRecord,
  RunRecordSchema,
} from "../protocol/types/run_record.ts";
import {
  checkpointLabel,
  CorruptCheckpointError,
  type ReadCheckpointFile,
  verifyFiles,
  verifyManifest,
} from "./checkpoint_verify.ts";
import { jsonBytes } from "./checkpoint_codec.ts";

/** Name of a checkpoint's expiry record. */
export const EXPIRY_FILE = "expires_at.json";

/** Name of a run's record, in the run's folder. */
export const RUN_RECORD_FILE = "run.json";

const ExpirySchema = z.strictObject({
  "expires_at": z.iso.datetime(),
});

/** The bytes of an expiry record. */
export function expiryBytes(expiresAt: string): Uint8Array {
  return jsonBytes({ "expires_at": expiresAt });
}

/**
 * The time an expiry record holds.
 *
 * @throws {CorruptCheckpointError} when it holds none
 */
export function parseExpiry(
  bytes: Uint8Array,
  parts: CheckpointPathParts,
): string {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes));
    return parseOrThrow(ExpirySchema, v, "").expires_at;
  } catch {
    throw new CorruptCheckpointError(
      `checkpoint ${
        checkpointLabel(parts)
      } is damaged: ${EXPIRY_FILE} does not hold an ISO 8601 expires_at`,
    );
  }
}

/** The bytes of a run's record. */
export function runRecordBytes(run: RunRecord): Uint8Array {
  return jsonBytes(run);
}

/** The run record `bytes` hold, or null when they hold none (it is ignored). */
export function parseRunRecord(
  bytes: Uint8Array,
  runId: string,
): RunRecord | null {
  try {
    const r = parseOrThrow(
      RunRecordSchema,
      JSON.parse(new TextDecoder().decode(bytes)),
      "",
    );
    return r.runId === runId ? r : null;
  } catch {
    return null;
  }
}

/**
 * Every file of a checkpoint, for an archive: the data files, each checked
 * against its sha256 in the manifest, then `manifest.json` and
 * `checkpoint_complete` as verified (read once, so a concurrent overwrite
 * cannot mix two saves).
 *
 * @throws {NotFoundError} when there is no checkpoint
 * @throws {CorruptCheckpointError} when any file fails its check
 */
export async function verifiedCheckpointFiles(
  read: ReadCheckpointFile,
  parts: CheckpointPathParts,
): Promise<Map<string, Uint8Array>> {
  const seen = new Map<string, Uint8Array>();
  const once: ReadCheckpointFile = async (file) => {
    const b = await read(file);
    if (b !== null) seen.set(file, b);
    return b;
  };
  const manifest = await verifyManifest(once, parts);
  const files = await verifyFiles(once, manifest, checkpointLabel(parts));
  const out = new Map<string, Uint8Array>();
  for (const f of CHECKPOINT_DATA_FILES) {
    const b = files.get(f);
    if (b !== undefined) out.set(f, b);
  }
  out.set(MANIFEST_FILE, seen.get(MANIFEST_FILE)!);
  out.set(COMPLETE_FILE, seen.get(COMPLETE_FILE)!);
  return out;
}
