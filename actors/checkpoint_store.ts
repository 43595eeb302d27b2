/**
 * CheckpointStore: writes and reads checkpoints for every run of a node (the
 * filesystem in embedded mode). Paths follow `bios://<run>/<kind>/<name>`.
 *
 * @module
 */
import type { Actor } from "../runtime/actor.ts";
import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
} from "../runtime/errors.ts";
import {
  parseCheckpointPath,
  validateCheckpointName,
} from "../protocol/types/checkpoint_path.ts";
import {
  checkpointDir,
  type CheckpointEntry,
  type CheckpointKind,
  type CheckpointManifest,
  exists,
  listCheckpoints,
  readCheckpoint,
  readManifest,
  removeStaleTemporaries,
  type SaveFault,
  writeCheckpoint,
} from "./checkpoint_files.ts";
import { fromWire, toWire, type WireTensors } from "./wire_tensors.ts";

/** Messages the store handles. */
export type CheckpointMsg =
  | {
    type: "save";
    overwrite: boolean;
    manifest: Omit<CheckpointManifest, "files" | "createdAt" | "format">;
    params: WireTensors;
    m?: WireTensors;
    v?: WireTensors;
  }
  | { type: "load"; path: string; optimizer: boolean; forTraining: boolean }
  | { type: "info"; path: string }
  | { type: "list"; runId: string };

/** Age past which a temporary save folder is taken as abandoned. */
const STALE_TEMPORARY_MS = 3_600_000;

/** Address of a node's checkpoint store. */
export const CHECKPOINT_STORE = "checkpoints";

/** The CheckpointStore actor. */
export class CheckpointStore implements Actor<CheckpointMsg, unknown> {
  /**
   * @param root folder holding `<runId>/<kind>/<name>/`
   * @param fault test hook to simulate a crash mid-save
   */
  constructor(readonly root: string, readonly fault?: SaveFault) {}

  /** Sweep what interrupted saves left behind (never listed, only disk space). */
  async init(): Promise<void> {
    await removeStaleTemporaries(this.root, STALE_TEMPORARY_MS);
  }

  /** Handle one message. */
  async receive(msg: CheckpointMsg): Promise<unknown> {
    switch (msg.type) {
      case "save": {
        const m = msg.manifest;
        validateCheckpointName(m.name);
        const dir = checkpointDir(this.root, m.runId, m.kind, m.name);
        const path = `bios://${m.runId}/${m.kind}/${m.name}`;
        if (!msg.overwrite && await exists(dir)) {
          throw new ConflictError(
            `name ${
              JSON.stringify(m.name)
            } is taken: ${path} exists (pass overwrite: true)`,
          );
        }
        await writeCheckpoint(this.root, {
          manifest: m,
          params: fromWire(msg.params),
          optimizer: msg.m && msg.v
            ? { m: fromWire(msg.m), v: fromWire(msg.v) }
            : undefined,
        }, { overwrite: msg.overwrite, fault: this.fault });
        return { path };
      }
      case "load": {
        const { dir, kind } = this.#locate(msg.path);
        if (msg.forTraining && kind !== "weights") {
          throw new InvalidArgumentError(
            "path",
            `path ${msg.path} is a sampler-only checkpoint (sampler_weights, no optimizer state); ` +
              `training loads bios://<run>/weights/<name> checkpoints`,
          );
        }
        const ck = await readCheckpoint(dir, msg.optimizer, msg.path).catch((
          e,
        ) => notFoundAs(e, msg.path));
        return {
          manifest: ck.manifest,
          params: toWire(ck.params),
          m: ck.optimizer ? toWire(ck.optimizer.m) : undefined,
          v: ck.optimizer ? toWire(ck.optimizer.v) : undefined,
        };
      }
      case "info": {
        const { dir } = this.#locate(msg.path);
        return await readManifest(dir).catch((e) => notFoundAs(e, msg.path));
      }
      case "list":
        return await listCheckpoints(
          this.root,
          msg.runId,
        ) satisfies CheckpointEntry[];
    }
  }

  #locate(path: string): { dir: string; kind: CheckpointKind } {
    const p = parseCheckpointPath(path);
    const dir = checkpointDir(this.root, p.runId, p.kind, p.name);
    return { dir, kind: p.kind };
  }
}

// Name the checkpoint by the path the caller gave, not by its folder on this node.
function notFoundAs(e: unknown, path: string): never {
  if (e instanceof NotFoundError) {
    throw new NotFoundError(`path ${path} names no checkpoint`);
  }
  throw e;
}
