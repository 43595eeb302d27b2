/**
 * CheckpointStore: writes and reads checkpoints for every run of a node,
 * through a {@link CheckpointStorage} (the filesystem in embedded mode,
 * JetStream Object Store on a cluster). Paths follow
 * `bios://<run>/<kind>/<name>` in both.
 *
 * The store is the boundary between the node and its storage: a storage
 * fault in any operation fails that operation alone with a StorageError (in
 * `bios://` terms), a damaged checkpoint with a CorruptCheckpointError, and a
 * missing one with a NotFoundError; none of them stops the store. Start-up
 * recovery never fails the start: what it cannot fix is logged and left.
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
  isRunId,
  parseCheckpointPath,
  validateCheckpointName,
} from "../protocol/types/checkpoint_path.ts";
import type { CheckpointManifest } from "../protocol/types/checkpoint_manifest.ts";
import type {
  CheckpointEntry,
  CheckpointStorage,
} from "./checkpoint_storage.ts";
import { checkFitsModel, checkpointLabel } from "./checkpoint_verify.ts";
import type { StorageOp } from "./storage_fault.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  type StoreRequest,
  StoreRequestSchema,
} from "../protocol/store_messages.ts";
import { loadBaseModel } from "./base_models.ts";
import { fromWire, toWire } from "./wire_tensors.ts";
import { localAdapterDir } from "../protocol/types/adapter_path.ts";
import {
  adapterBaseModel,
  checkPeftFits,
  peftManifest,
  readPeftAdapter,
} from "./peft_adapter.ts";

/** Messages the store handles (see `protocol/store_messages.ts`). */
export type CheckpointMsg = StoreRequest;

export { CHECKPOINT_STORE } from "../protocol/addresses.ts";

/** The CheckpointStore actor. */
export class CheckpointStore implements Actor<unknown, unknown> {
  /** @param storage where the checkpoints live */
  constructor(readonly storage: CheckpointStorage) {}

  /**
   * Finish or undo the saves a crash interrupted (the storage's `recover`).
   * Never throws: a store that cannot read its storage still starts, and
   * each operation reports the fault it meets.
   */
  async init(): Promise<void> {
    const problems = await this.storage.recover();
    for (const p of problems) console.error(`checkpoint recovery: ${p}`);
  }

  /** Handle one message. */
  async receive(raw: unknown): Promise<unknown> {
    const msg = parseOrThrow(StoreRequestSchema, raw, "");
    try {
      return await this.#handle(msg);
    } catch (e) {
      throw this.storage.storageError(e, describe(msg));
    }
  }

  async #handle(msg: CheckpointMsg): Promise<unknown> {
    switch (msg.type) {
      case "save": {
        const m = msg.manifest;
        checkRunId(m.runId);
        validateCheckpointName(m.name);
        const path = checkpointLabel(m);
        if (!msg.overwrite && await this.storage.exists(m)) {
          throw new ConflictError(
            `name ${
              JSON.stringify(m.name)
            } is taken: ${path} exists (pass overwrite: true)`,
          );
        }
        await this.storage.save({
          manifest: m,
          params: fromWire(msg.params),
          optimizer: msg.m && msg.v
            ? { m: fromWire(msg.m), v: fromWire(msg.v) }
            : undefined,
        }, { overwrite: msg.overwrite });
        return { path };
      }
      case "load": {
        const folder = localAdapterDir(msg.path);
        if (folder !== null) {
          if (msg.optimizer) {
            throw new InvalidArgumentError(
              "path",
              `path ${msg.path} is an adapter folder: it holds no optimizer state (use loadState)`,
            );
          }
          const a = await loadPeft(folder, msg.path, msg.baseModel);
          return { manifest: a.manifest, params: toWire(a.params) };
        }
        const p = parseCheckpointPath(msg.path);
        if (msg.forTraining && p.kind !== "weights") {
          throw new InvalidArgumentError(
            "path",
            `path ${msg.path} is a sampler-only checkpoint (sampler_weights, no optimizer state); ` +
              `training loads bios://<run>/weights/<name> checkpoints`,
          );
        }
        const ck = await this.storage.load(p, msg.optimizer);
        await fitsModel(ck.manifest, ck.params, msg.path);
        return {
          manifest: ck.manifest,
          params: toWire(ck.params),
          m: ck.optimizer ? toWire(ck.optimizer.m) : undefined,
          v: ck.optimizer ? toWire(ck.optimizer.v) : undefined,
        };
      }
      case "info": {
        const folder = localAdapterDir(msg.path);
        if (folder !== null) {
          return (await loadPeft(folder, msg.path, msg.baseModel)).manifest;
        }
        return await this.storage.info(parseCheckpointPath(msg.path));
      }
      case "list":
        checkRunId(msg.runId);
        return await this.storage.list(msg.runId) satisfies CheckpointEntry[];
    }
  }
}

function checkRunId(runId: unknown): void {
  if (!isRunId(runId)) {
    throw new InvalidArgumentError(
      "runId",
      `runId must be a run id (A–Z, a–z, 0–9, "_", ":" or "-"): got ${
        JSON.stringify(runId)
      }`,
    );
  }
}

/** Refuse an adapter whose tensors are not exactly its base model's adapter. */
async function fitsModel(
  m: CheckpointManifest,
  params: Parameters<typeof checkFitsModel>[0],
  path: string,
): Promise<void> {
  const base = await loadBaseModel(m.baseModel).catch(() => {
    throw new NotFoundError(
      `path ${path} holds an adapter for baseModel ${
        JSON.stringify(m.baseModel)
      }, which this node does not serve`,
    );
  });
  checkFitsModel(params, m, base.config, path);
}

/**
 * A PEFT adapter folder, checked against the model it is loaded onto (the
 * one asked for, else the one its config names).
 */
async function loadPeft(dir: string, path: string, baseModel?: string) {
  const a = await readPeftAdapter(dir, path);
  const name = adapterBaseModel(a, baseModel, path);
  const base = await loadBaseModel(name).catch(() => {
    throw new NotFoundError(
      `baseModel ${JSON.stringify(name)} is not a model this node serves`,
    );
  });
  checkPeftFits(a, base, name, path);
  return { manifest: peftManifest(a, name), params: a.params };
}

/** An operation in the caller's words, for storage errors. */
function describe(msg: CheckpointMsg): StorageOp {
  switch (msg.type) {
    case "save":
      return {
        what: `saving ${checkpointLabel(msg.manifest)}`,
        outcome: "nothing was saved",
        retry: "save again",
      };
    case "load":
      return {
        what: `loading ${msg.path}`,
        outcome: "nothing was loaded",
        retry: "load again",
      };
    case "info":
      return {
        what: `reading ${msg.path}`,
        outcome: "nothing was changed",
        retry: "ask again",
      };
    case "list":
      return {
        what: `listing the checkpoints of run ${msg.runId}`,
        outcome: "nothing was changed",
        retry: "list again",
      };
  }
}
