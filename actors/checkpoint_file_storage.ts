/**
 * Checkpoints in a folder on the node's disk, `<root>/<run>/<kind>/<name>/`:
 * the embedded default. The folder layout, the crash-safe save and the
 * start-up recovery are in checkpoint_files.ts and checkpoint_recovery.ts;
 * this is their {@link CheckpointStorage}.
 *
 * @module
 */
import { NotFoundError } from "../runtime/errors.ts";
import type { CheckpointPathParts } from "../protocol/types/checkpoint_path.ts";
import type { CheckpointManifest } from "../protocol/types/checkpoint_manifest.ts";
import {
  checkpointDir,
  exists,
  isAbsent,
  listCheckpoints,
  readCheckpoint,
  readExpiry,
  readManifest,
  type SaveFault,
  syncDir,
  writeCheckpoint,
  writeSynced,
} from "./checkpoint_files.ts";
import {
  EXPIRY_FILE,
  expiryBytes,
  parseRunRecord,
  RUN_RECORD_FILE,
  runRecordBytes,
  verifiedCheckpointFiles,
} from "./checkpoint_sidecars.ts";
import { folderReader } from "./checkpoint_verify.ts";
import type { RunRecord } from "../protocol/types/run_record.ts";
import { recoverCheckpoints } from "./checkpoint_recovery.ts";
import { checkpointLabel } from "./checkpoint_verify.ts";
import type { CheckpointData, LoadedCheckpoint } from "./checkpoint_codec.ts";
import type {
  CheckpointEntry,
  CheckpointStorage,
} from "./checkpoint_storage.ts";
import { asStorageError, type StorageOp } from "./storage_fault.ts";

/** Age past which an orphan temporary save folder is taken as abandoned. */
const STALE_TEMPORARY_MS = 3_600_000;

/** Checkpoints as folders under `root` (see the module). */
export class FileCheckpointStorage implements CheckpointStorage {
  /**
   * @param root folder holding `<runId>/<kind>/<name>/`
   * @param fault test hook to simulate a fault or a crash mid-save
   */
  constructor(readonly root: string, readonly fault?: SaveFault) {}

  /** `files in <root>`. */
  get description(): string {
    return `files in ${this.root}`;
  }

  /** Finish or undo the saves a crash interrupted (checkpoint_recovery.ts). */
  async recover(): Promise<string[]> {
    return (await recoverCheckpoints(this.root, STALE_TEMPORARY_MS)).problems;
  }

  /** Whether anything is at the checkpoint's folder. */
  async exists(p: CheckpointPathParts): Promise<boolean> {
    return await exists(this.#dir(p));
  }

  /** Write the checkpoint's folder atomically (checkpoint_files.ts). */
  async save(
    data: CheckpointData,
    opts: { overwrite: boolean },
  ): Promise<CheckpointManifest> {
    return await writeCheckpoint(this.root, data, {
      overwrite: opts.overwrite,
      fault: this.fault,
    });
  }

  /** Read and verify the checkpoint's folder whole. */
  async load(
    p: CheckpointPathParts,
    withOptimizer: boolean,
  ): Promise<LoadedCheckpoint> {
    return await readCheckpoint(this.#dir(p), withOptimizer);
  }

  /** The folder's verified manifest. */
  async info(p: CheckpointPathParts): Promise<CheckpointManifest> {
    return await readManifest(this.#dir(p));
  }

  /** The run's folders whose record and manifest verify. */
  async list(runId: string): Promise<CheckpointEntry[]> {
    return await listCheckpoints(this.root, runId);
  }

  /**
   * Renames the folder to a `.tmp-<name>-<id>` one (at once and whole: no
   * longer listed or loadable), then removes it; a crash in between leaves
   * a temporary folder that recovery sweeps once it is stale.
   */
  async remove(p: CheckpointPathParts): Promise<void> {
    const dir = this.#dir(p);
    const parent = dir.slice(0, dir.lastIndexOf("/"));
    const gone = `${parent}/.tmp-${p.name}-${crypto.randomUUID()}`;
    try {
      await Deno.rename(dir, gone);
    } catch (e) {
      if (!isAbsent(e)) throw e;
      throw new NotFoundError(`path ${checkpointLabel(p)} names no checkpoint`);
    }
    await syncDir(parent);
    await Deno.remove(gone, { recursive: true }).catch(() => {});
  }

  /** `expires_at.json` in the checkpoint's folder, if there. */
  async expiry(p: CheckpointPathParts): Promise<string | null> {
    return await readExpiry(this.#dir(p), p);
  }

  /**
   * Writes `expires_at.json` into the checkpoint's folder (a temporary file
   * renamed over it), or removes it.
   */
  async setExpiry(
    p: CheckpointPathParts,
    expiresAt: string | null,
  ): Promise<void> {
    const dir = this.#dir(p);
    await readManifest(dir); // NotFoundError when there is no checkpoint
    if (expiresAt === null) {
      await Deno.remove(`${dir}/${EXPIRY_FILE}`).catch((e) => {
        if (!isAbsent(e)) throw e;
      });
    } else {
      await replaceFile(dir, EXPIRY_FILE, expiryBytes(expiresAt));
    }
    await syncDir(dir);
  }

  /** The folder's files, each verified. */
  async files(p: CheckpointPathParts): Promise<Map<string, Uint8Array>> {
    return await verifiedCheckpointFiles(folderReader(this.#dir(p)), p);
  }

  /** `<root>/<run>/run.json`. */
  async putRun(run: RunRecord): Promise<void> {
    const dir = `${this.root}/${run.runId}`;
    await Deno.mkdir(dir, { recursive: true });
    await replaceFile(dir, RUN_RECORD_FILE, runRecordBytes(run));
  }

  /** `<root>/<run>/run.json`, if there and readable. */
  async runRecord(runId: string): Promise<RunRecord | null> {
    try {
      return parseRunRecord(
        await Deno.readFile(`${this.root}/${runId}/${RUN_RECORD_FILE}`),
        runId,
      );
    } catch (e) {
      if (isAbsent(e)) return null;
      throw e;
    }
  }

  /** The run folders under the root. */
  async runIds(): Promise<string[]> {
    try {
      return (await Array.fromAsync(Deno.readDir(this.root)))
        .filter((e) => e.isDirectory && !e.name.startsWith("."))
        .map((e) => e.name);
    } catch (e) {
      if (isAbsent(e)) return [];
      throw e;
    }
  }

  /** A filesystem error as a StorageError (storage_fault.ts). */
  storageError(e: unknown, op: StorageOp): unknown {
    return asStorageError(e, op);
  }

  #dir(p: CheckpointPathParts): string {
    return checkpointDir(this.root, p.runId, p.kind, p.name);
  }
}

/** Write `dir/name` whole: a synced temporary file renamed over it. */
async function replaceFile(
  dir: string,
  name: string,
  bytes: Uint8Array,
): Promise<void> {
  const tmp = `${dir}/.${name}.tmp-${crypto.randomUUID()}`;
  try {
    await writeSynced(tmp, bytes);
    await Deno.rename(tmp, `${dir}/${name}`);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dir);
}
