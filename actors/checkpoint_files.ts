/**
 * Checkpoints on the filesystem, written whole or not at all.
 *
 * Layout of `<root>/<runId>/<kind>/<name>/`:
 * - `adapter_config.json`, `adapter_model.safetensors`: the LoRA adapter in
 *   PEFT's layout, loadable by standard tools as it is;
 * - `optimizer.safetensors` (kind `weights` only): Adam moments `m.<key>`,
 *   `v.<key>`, with the step count in its metadata;
 * - `manifest.json`: base model, LoRA config, step, sha256 of every file;
 * - `checkpoint_complete`, written last: `{ "manifest_sha256": "<hex>" }`.
 *
 * A save of `<name>` (the store runs one at a time per folder):
 * 1. writes `.tmp-<name>-<id>/` whole: each file fsynced, the completion
 *    record last, then the folder fsynced;
 * 2. on an overwrite, renames the old `<name>` to `.old-<name>-<id>` (same
 *    id) and fsyncs the parent;
 * 3. renames `.tmp-<name>-<id>` to `<name>` and fsyncs the parent;
 * 4. removes `.old-<name>-<id>`.
 *
 * A crash anywhere leaves `<name>` (old or new), or `.old-<name>-<id>` with or
 * without a complete `.tmp-<name>-<id>`; {@link recoverCheckpoints} (run when
 * the store starts) puts the name back from those, so the name always loads
 * as the old or the new checkpoint. Reading verifies a checkpoint as a whole
 * (see checkpoint_verify.ts); listing shows exactly those whose completion
 * record verifies.
 *
 * @module
 */
import { ConflictError, NotFoundError } from "../runtime/errors.ts";
import type { CheckpointPathParts } from "../protocol/types/checkpoint_path.ts";
import {
  type CheckpointManifest,
  COMPLETE_FILE,
  MANIFEST_FILE,
} from "../protocol/types/checkpoint_manifest.ts";
import {
  adapterConfig,
  checkpointLabel,
  CorruptCheckpointError,
  readVerifiedFiles,
  readVerifiedManifest,
  sha256Hex,
} from "./checkpoint_verify.ts";
import {
  type CheckpointData,
  decodeCheckpoint,
  encodeCheckpoint,
  type LoadedCheckpoint,
} from "./checkpoint_codec.ts";
import type { CheckpointEntry } from "./checkpoint_storage.ts";
import { EXPIRY_FILE, parseExpiry } from "./checkpoint_sidecars.ts";

export { adapterConfig, CorruptCheckpointError, sha256Hex };
export type {
  CheckpointData,
  CheckpointEntry,
  CheckpointManifest,
  LoadedCheckpoint,
};

/** The two kinds of checkpoint, as in `bios://<run>/<kind>/<name>`. */
export type CheckpointKind = "weights" | "sampler_weights";

/**
 * The points of a save, in order, at which the {@link SaveFault} hook is
 * called: after each file is written (fsynced), after the old copy is moved
 * aside (overwrites only), after the new one is in place, and after the old
 * one is removed (overwrites only).
 */
export const SAVE_STEPS = [
  "adapter_config.json",
  "adapter_model.safetensors",
  "optimizer.safetensors",
  "manifest.json",
  "checkpoint_complete",
  "old-aside",
  "new-in-place",
  "old-removed",
] as const;

/** One point of a save (see {@link SAVE_STEPS}). */
export type SaveStep = typeof SAVE_STEPS[number];

/**
 * Test hook, called at each {@link SaveStep} of a save. Throwing an ordinary
 * error there fails the save (which then cleans up); throwing a
 * {@link SimulatedCrash} leaves everything as it is, as if the process had
 * died at that point.
 */
export type SaveFault = (step: SaveStep) => void;

/**
 * Thrown by a test's {@link SaveFault}: the save stops where it is and cleans
 * nothing up, like a process killed at that point (and, thrown inside the
 * store actor, crashes it).
 */
export class SimulatedCrash extends Error {
  /** @param step where the simulated crash happens */
  constructor(readonly step: SaveStep) {
    super(`simulated crash at save step ${step}`);
    this.name = "SimulatedCrash";
  }
}

/** Folder of a checkpoint. */
export function checkpointDir(
  root: string,
  runId: string,
  kind: CheckpointKind,
  name: string,
): string {
  return `${root}/${runId}/${kind}/${name}`;
}

/**
 * Write a checkpoint atomically (see the module's steps). Throws a
 * ConflictError if it exists and `overwrite` is false. On an ordinary error
 * nothing changes: the temporary folder is removed and an old copy moved
 * aside is moved back.
 */
export async function writeCheckpoint(
  root: string,
  data: CheckpointData,
  opts: { overwrite?: boolean; fault?: SaveFault } = {},
): Promise<CheckpointManifest> {
  const m = data.manifest;
  const fault = opts.fault ?? (() => {});
  const parent = `${root}/${m.runId}/${m.kind}`;
  await Deno.mkdir(parent, { recursive: true });
  const final = `${parent}/${m.name}`;
  const id = crypto.randomUUID();
  const tmp = `${parent}/.tmp-${m.name}-${id}`;
  const old = `${parent}/.old-${m.name}-${id}`;
  let aside = false, inPlace = false;
  try {
    const ck = await encodeCheckpoint(data);
    await Deno.mkdir(tmp);
    for (const [file, bytes] of ck.files) {
      await writeSynced(`${tmp}/${file}`, bytes);
      fault(file);
    }
    await writeSynced(`${tmp}/${MANIFEST_FILE}`, ck.manifestBytes);
    fault("manifest.json");
    await writeSynced(`${tmp}/${COMPLETE_FILE}`, ck.completeBytes);
    await syncDir(tmp);
    fault("checkpoint_complete");
    if (await exists(final)) {
      if (!opts.overwrite) {
        throw new ConflictError(`${checkpointLabel(m)} exists`);
      }
      await Deno.rename(final, old);
      aside = true;
      await syncDir(parent);
      fault("old-aside");
    }
    await Deno.rename(tmp, final);
    inPlace = true;
    await syncDir(parent);
    fault("new-in-place");
    if (aside) {
      // Only disk space is at stake now; recovery removes it if this fails.
      await Deno.remove(old, { recursive: true }).catch(() => {});
      fault("old-removed");
    }
    return ck.manifest;
  } catch (e) {
    if (e instanceof SimulatedCrash) throw e;
    if (!inPlace) {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      if (aside) await Deno.rename(old, final).catch(() => {});
    }
    throw e;
  }
}

/**
 * Read and verify a checkpoint as a whole; NotFoundError if there is none
 * (no folder, or no completion record), CorruptCheckpointError if it is
 * damaged. `dir` is `<root>/<run>/<kind>/<name>`, and messages name the
 * checkpoint by its `bios://` path, never by the folder.
 */
export async function readCheckpoint(
  dir: string,
  withOptimizer: boolean,
): Promise<LoadedCheckpoint> {
  const parts = partsOfDir(dir);
  const label = checkpointLabel(parts);
  const manifest = await readVerifiedManifest(dir, parts);
  const files = await readVerifiedFiles(dir, manifest, label);
  return decodeCheckpoint(manifest, files, label, withOptimizer);
}

/** Read a checkpoint's verified manifest (NotFoundError if absent). */
export async function readManifest(dir: string): Promise<CheckpointManifest> {
  return await readVerifiedManifest(dir, partsOfDir(dir));
}

/**
 * List a run's checkpoints, oldest first: exactly the folders whose
 * completion record and manifest verify (what {@link readCheckpoint} accepts
 * as existing). Temporary folders are never listed.
 */
export async function listCheckpoints(
  root: string,
  runId: string,
): Promise<CheckpointEntry[]> {
  const out: CheckpointEntry[] = [];
  for (const kind of ["weights", "sampler_weights"] as const) {
    const parent = `${root}/${runId}/${kind}`;
    let names: string[];
    try {
      names = (await Array.fromAsync(Deno.readDir(parent)))
        .filter((e) => e.isDirectory && !e.name.startsWith("."))
        .map((e) => e.name);
    } catch (e) {
      if (isAbsent(e)) continue;
      throw e;
    }
    for (const name of names) {
      const dir = `${parent}/${name}`;
      let manifest: CheckpointManifest, expiresAt: string | null;
      try {
        manifest = await readVerifiedManifest(dir, { runId, kind, name });
        expiresAt = await readExpiry(dir, { runId, kind, name });
      } catch (e) {
        if (e instanceof NotFoundError || e instanceof CorruptCheckpointError) {
          continue;
        }
        throw e;
      }
      let size = 0;
      for (const f of Object.keys(manifest.files)) {
        size += await Deno.stat(`${dir}/${f}`).then((s) => s.size, (e) => {
          if (isAbsent(e)) return 0; // damaged: loading says which file
          throw e;
        });
      }
      out.push({
        runId,
        kind,
        name,
        checkpointId: `${kind}/${name}`,
        path: checkpointLabel({ runId, kind, name }),
        createdAt: manifest.createdAt,
        sizeBytes: size,
        step: manifest.step,
        expiresAt,
      });
    }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/**
 * The expiry recorded in the checkpoint folder `dir` (`expires_at.json`),
 * or null when there is none.
 *
 * @throws {CorruptCheckpointError} when the record is unreadable
 */
export async function readExpiry(
  dir: string,
  parts: CheckpointPathParts,
): Promise<string | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(`${dir}/${EXPIRY_FILE}`);
  } catch (e) {
    if (isAbsent(e)) return null;
    throw e;
  }
  return parseExpiry(bytes, parts);
}

/** `<root>/<run>/<kind>/<name>` split into its path parts. */
export function partsOfDir(dir: string): CheckpointPathParts {
  const [runId, kind, name] = dir.split("/").slice(-3);
  return { runId, kind: kind as CheckpointKind, name };
}

/** Whether an error means "there is nothing there". */
export function isAbsent(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound ||
    e instanceof Deno.errors.NotADirectory;
}

/** Whether anything (a folder, a file, a link) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (isAbsent(e)) return false;
    throw e;
  }
}

/** Write `bytes` to `path` and fsync it. */
export async function writeSynced(
  path: string,
  bytes: Uint8Array,
): Promise<void> {
  const f = await Deno.open(path, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } finally {
    f.close();
  }
}

/** fsync a folder, so the renames in it are durable (best effort). */
export async function syncDir(path: string): Promise<void> {
  try {
    const d = await Deno.open(path, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}
