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
 * Expiry (a checkpoint's TTL, kept by the storage beside the checkpoint):
 * from its time on, the checkpoint is refused (NotFoundError) by `load`,
 * `info` and `files` and left out of listings, and it is deleted — then, by
 * whichever request meets it first, or by the store's timer, which fires at
 * the nearest expiry this store knows of (set here or seen in a listing)
 * and at least every hour sweeps every run.
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
  type CheckpointPathParts,
  isRunId,
  parseCheckpointPath,
  validateCheckpointName,
} from "../protocol/types/checkpoint_path.ts";
import type { CheckpointListing } from "../protocol/types/training_runs.ts";
import type { RunRecord } from "../protocol/types/run_record.ts";
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

/** Longest wait between two sweeps of every run for expired checkpoints. */
const SWEEP_MS = 3_600_000;

/** A run as the store knows it: its record (or its checkpoints') and newest checkpoints. */
export interface StoredRun {
  /** The run id. */
  runId: string;
  /** Its base model. */
  baseModel: string;
  /** Its LoRA settings. */
  lora: RunRecord["lora"];
  /** When it was created; null when it left no record. */
  createdAt: string | null;
  /** The gateway tenant that created it; null for none (or no record). */
  owner: string | null;
  /** The highest step of its checkpoints (0 without any). */
  step: number;
  /** Its newest `weights` checkpoint. */
  lastCheckpoint: CheckpointListing | null;
  /** Its newest `sampler_weights` checkpoint. */
  lastSamplerCheckpoint: CheckpointListing | null;
}

/** The CheckpointStore actor. */
export class CheckpointStore implements Actor<unknown, unknown> {
  #running = false;
  /** Expiries this store knows of, by path (ms since the epoch). */
  readonly #expiries = new Map<string, number>();
  #timer?: ReturnType<typeof setTimeout>;
  #lastSweep = 0;
  #busy: Promise<void> = Promise.resolve();

  /** @param storage where the checkpoints live */
  constructor(readonly storage: CheckpointStorage) {}

  /**
   * Finish or undo the saves a crash interrupted (the storage's `recover`),
   * then start the expiry timer. Never throws: a store that cannot read its
   * storage still starts, and each operation reports the fault it meets.
   */
  async init(): Promise<void> {
    this.#running = true;
    const problems = await this.storage.recover();
    for (const p of problems) console.error(`checkpoint recovery: ${p}`);
    this.#schedule(0);
  }

  /** Stop the expiry timer. */
  terminate(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running = false;
  }

  /** Fire `expire` at the nearest known expiry, in `atMostMs` at the latest. */
  #schedule(atMostMs = SWEEP_MS): void {
    if (!this.#running) return;
    clearTimeout(this.#timer);
    let next = Date.now() + atMostMs;
    for (const t of this.#expiries.values()) next = Math.min(next, t);
    this.#timer = setTimeout(() => {
      this.#exclusive(() => this.#expire()).catch((e) => {
        console.error(`deleting expired checkpoints: ${(e as Error).message}`);
      });
    }, Math.max(0, next - Date.now()));
    Deno.unrefTimer(Number(this.#timer));
  }

  /** Handle one message (never at once with the expiry timer's work). */
  async receive(raw: unknown): Promise<unknown> {
    const msg = parseOrThrow(StoreRequestSchema, raw, "");
    try {
      return await this.#exclusive(() => this.#handle(msg));
    } catch (e) {
      throw this.storage.storageError(e, describe(msg));
    }
  }

  /** Run `work` after whatever the store is doing (a message, the timer's sweep). */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#busy.then(work);
    this.#busy = run.then(() => {}, () => {});
    return run;
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
        await this.#refuseExpired(p, msg.path);
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
        const p = parseCheckpointPath(msg.path);
        await this.#refuseExpired(p, msg.path);
        return await this.storage.info(p);
      }
      case "list":
        checkRunId(msg.runId);
        return await this.#list(msg.runId);
      case "delete":
        await this.storage.remove(parseCheckpointPath(msg.path));
        this.#expiries.delete(msg.path);
        return null;
      case "set_ttl": {
        const p = parseCheckpointPath(msg.path);
        await this.#refuseExpired(p, msg.path);
        const expiresAt = msg.ttlSeconds === null
          ? null
          : new Date(Date.now() + msg.ttlSeconds * 1000).toISOString();
        await this.storage.setExpiry(p, expiresAt);
        if (expiresAt === null) this.#expiries.delete(msg.path);
        else this.#expiries.set(msg.path, Date.parse(expiresAt));
        this.#schedule();
        return { expiresAt };
      }
      case "files": {
        const p = parseCheckpointPath(msg.path);
        await this.#refuseExpired(p, msg.path);
        return Object.fromEntries(await this.storage.files(p));
      }
      case "put_run":
        await this.storage.putRun(msg.run);
        return null;
      case "list_runs":
        return await this.#listRuns(msg.runId);
    }
  }

  /**
   * A run's listed checkpoints, oldest first: the expired ones are deleted
   * and left out; the others' expiries are remembered for the timer.
   */
  async #list(runId: string): Promise<CheckpointEntry[]> {
    const out: CheckpointEntry[] = [];
    const before = this.#expiries.size;
    for (const e of await this.storage.list(runId)) {
      if (e.expiresAt === null) {
        this.#expiries.delete(e.path);
      } else if (Date.parse(e.expiresAt) <= Date.now()) {
        await this.#removeExpired(parseCheckpointPath(e.path), e.path);
        continue;
      } else this.#expiries.set(e.path, Date.parse(e.expiresAt));
      out.push(e);
    }
    if (this.#expiries.size !== before) this.#schedule();
    return out;
  }

  /** The runs with a record or a checkpoint (or run `only`), newest first. */
  async #listRuns(only?: string): Promise<StoredRun[]> {
    const ids = only !== undefined ? [only] : await this.storage.runIds();
    const out: StoredRun[] = [];
    for (const runId of ids) {
      if (!isRunId(runId)) continue;
      const record = await this.storage.runRecord(runId);
      const entries = await this.#list(runId);
      const newest = (kind: string) =>
        entries.filter((e) => e.kind === kind).at(-1) ?? null;
      let from: { baseModel: string; lora: RunRecord["lora"] } | null = record;
      if (from === null) {
        if (entries.length === 0) continue;
        const last = entries.at(-1)!;
        from = await this.storage.info(parseCheckpointPath(last.path));
      }
      out.push({
        runId,
        baseModel: from.baseModel,
        lora: from.lora,
        createdAt: record?.createdAt ?? null,
        owner: record?.owner ?? null,
        step: Math.max(0, ...entries.map((e) => e.step)),
        lastCheckpoint: newest("weights"),
        lastSamplerCheckpoint: newest("sampler_weights"),
      });
    }
    const key = (r: StoredRun) =>
      r.createdAt ?? r.lastCheckpoint?.createdAt ??
        r.lastSamplerCheckpoint?.createdAt ?? "";
    return out.sort((a, b) => key(b).localeCompare(key(a)));
  }

  /**
   * Delete what has expired: the known expiries that have come (each read
   * again: another node may have changed it), and, once an hour, every
   * run's (the listing deletes them).
   */
  async #expire(): Promise<void> {
    try {
      await this.#expireDue();
    } finally {
      this.#schedule();
    }
  }

  async #expireDue(): Promise<void> {
    const now = Date.now();
    for (const [path, t] of [...this.#expiries]) {
      if (t > now) continue;
      this.#expiries.delete(path);
      const p = parseCheckpointPath(path);
      const at = await this.storage.expiry(p).catch(() => null);
      if (at === null) continue;
      if (Date.parse(at) <= Date.now()) await this.#removeExpired(p, path);
      else this.#expiries.set(path, Date.parse(at));
    }
    if (now - this.#lastSweep >= SWEEP_MS) {
      this.#lastSweep = now;
      for (const runId of await this.storage.runIds().catch(() => [])) {
        if (isRunId(runId)) await this.#list(runId).catch(() => {});
      }
    }
  }

  /** Delete an expired checkpoint (one gone already is fine). */
  async #removeExpired(p: CheckpointPathParts, path: string): Promise<void> {
    this.#expiries.delete(path);
    try {
      await this.storage.remove(p);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }

  /**
   * @throws {NotFoundError} when the checkpoint has expired (it is deleted
   *   now)
   */
  async #refuseExpired(p: CheckpointPathParts, path: string): Promise<void> {
    const at = await this.storage.expiry(p);
    if (at === null) return;
    if (Date.parse(at) > Date.now()) {
      this.#expiries.set(path, Date.parse(at));
      return;
    }
    await this.#removeExpired(p, path);
    throw new NotFoundError(
      `path ${path} names no checkpoint (it expired at ${at})`,
    );
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
    case "delete":
      return {
        what: `deleting ${msg.path}`,
        outcome: "it may still be there",
        retry: "delete again",
      };
    case "set_ttl":
      return {
        what: `setting the expiry of ${msg.path}`,
        outcome: "its expiry may be unchanged",
        retry: "set it again",
      };
    case "files":
      return {
        what: `reading the files of ${msg.path}`,
        outcome: "nothing was changed",
        retry: "ask again",
      };
    case "put_run":
      return {
        what: `recording run ${msg.run.runId}`,
        outcome: "the run is not recorded",
        retry: "record it again",
      };
    case "list_runs":
      return {
        what: "listing the training runs",
        outcome: "nothing was changed",
        retry: "list again",
      };
  }
}
