/**
 * Checkpoints in a JetStream Object Store bucket: a cluster's storage, which
 * every node sees, so any node loads what another saved by the same
 * `bios://` path.
 *
 * Objects of `bios://<run>/<kind>/<name>` (one bucket, objects named by path):
 * - `<run>/<kind>/<name>/<sha>/adapter_config.json`,
 *   `…/<sha>/adapter_model.safetensors`, `…/<sha>/optimizer.safetensors`
 *   and `…/<sha>/manifest.json`: one save's files, in a version folder named
 *   by the sha256 of its manifest (which holds the sha256 of each file and
 *   the time of the save, so every save has its own folder);
 * - `<run>/<kind>/<name>/checkpoint_complete`: the completion record,
 *   `{ "manifest_sha256": "<sha>" }` as on the filesystem, naming the
 *   version that is the checkpoint.
 *
 * A save puts the data files first, then the manifest, then the record (an
 * object's put is atomic: its metadata, written after its chunks, is what
 * makes it visible). Until the record is put, readers see the old record and
 * the old version, whole: an overwrite switches versions in one put, and
 * only then is the old version deleted. The record is put with the revision
 * the save read (compare-and-set), so of two saves of one name exactly one
 * wins a name that was free, and an overwrite deletes exactly the version
 * it replaced. A reader follows the record and verifies everything (the
 * manifest's sha256, each file's); a read that raced an overwrite's
 * deletion reads the new record again. Listing shows exactly the names
 * whose record and manifest verify. A crashed save leaves a version nothing
 * names: `recover` deletes such versions once they are older than an hour
 * (a save still running on another node is never swept).
 *
 * nats-server 2.9 acknowledges a put before it is on disk (reliability
 * anchors §0.4): the filesystem store's fsync is the stronger durability.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { type ObjectStore, Objm, StorageType } from "@nats-io/obj";
import {
  BiosError,
  ConflictError,
  NotFoundError,
  StorageError,
} from "../runtime/errors.ts";
import type { CheckpointPathParts } from "../protocol/types/checkpoint_path.ts";
import {
  type CheckpointManifest,
  COMPLETE_FILE,
  MANIFEST_FILE,
} from "../protocol/types/checkpoint_manifest.ts";
import type { SaveFault } from "./checkpoint_files.ts";
import { SimulatedCrash } from "./checkpoint_files.ts";
import {
  checkpointLabel,
  CorruptCheckpointError,
  type ReadCheckpointFile,
  verifyFiles,
  verifyManifest,
} from "./checkpoint_verify.ts";
import {
  type CheckpointData,
  decodeCheckpoint,
  encodeCheckpoint,
  type LoadedCheckpoint,
} from "./checkpoint_codec.ts";
import type {
  CheckpointEntry,
  CheckpointStorage,
} from "./checkpoint_storage.ts";
import { asStorageError, type StorageOp } from "./storage_fault.ts";
import {
  EXPIRY_FILE,
  expiryBytes,
  parseExpiry,
  parseRunRecord,
  RUN_RECORD_FILE,
  runRecordBytes,
  verifiedCheckpointFiles,
} from "./checkpoint_sidecars.ts";
import type { RunRecord } from "../protocol/types/run_record.ts";

/** The bucket a node uses unless told otherwise. */
export const DEFAULT_CHECKPOINT_BUCKET = "bios-checkpoints";

/** Age past which a version no record names is taken as abandoned. */
const STALE_VERSION_MS = 3_600_000;

/** How often a stalled read checks whether its object was replaced. */
const STALL_CHECK_MS = 1_000;

/** Reads of one checkpoint retried when an overwrite switched it mid-read. */
const READ_TRIES = 3;

const SHA = /^[0-9a-f]{64}$/;

/** Options of {@link ObjectCheckpointStorage}. */
export interface ObjectStorageOptions {
  /**
   * Test hook, called after each data file and the manifest are put
   * (`adapter_config.json` … `manifest.json`), after the record is put
   * (`new-in-place`) and after the old version is deleted (`old-removed`).
   */
  fault?: SaveFault;
  /** Age past which `recover` deletes an unnamed version. @default {3600000} */
  staleMs?: number;
}

/** Checkpoints in one JetStream Object Store bucket (see the module). */
export class ObjectCheckpointStorage implements CheckpointStorage {
  readonly #os: ObjectStore;
  readonly #fault: SaveFault;
  readonly #staleMs: number;

  /**
   * @param os the bucket
   * @param bucket its name, for the log
   */
  constructor(
    os: ObjectStore,
    readonly bucket: string,
    opts: ObjectStorageOptions = {},
  ) {
    this.#os = os;
    this.#fault = opts.fault ?? (() => {});
    this.#staleMs = opts.staleMs ?? STALE_VERSION_MS;
  }

  /**
   * The storage in bucket `bucket` of `nc`'s JetStream (made, file-backed,
   * when missing).
   *
   * @throws when the server has no JetStream or refuses the bucket
   */
  static async open(
    nc: NatsConnection,
    bucket: string = DEFAULT_CHECKPOINT_BUCKET,
    opts: ObjectStorageOptions = {},
  ): Promise<ObjectCheckpointStorage> {
    const os = await new Objm(nc).create(bucket, {
      storage: StorageType.File,
      description: "Bios checkpoints: bios://<run>/<kind>/<name>",
    });
    return new ObjectCheckpointStorage(os, bucket, opts);
  }

  /** `JetStream object store bucket <bucket>`. */
  get description(): string {
    return `JetStream object store bucket ${this.bucket}`;
  }

  /** Whether the checkpoint's record is there. */
  async exists(p: CheckpointPathParts): Promise<boolean> {
    const info = await this.#os.info(recordName(p));
    return info !== null && !info.deleted;
  }

  /** Put the files, the manifest, then the record (see the module). */
  async save(
    data: CheckpointData,
    opts: { overwrite: boolean },
  ): Promise<CheckpointManifest> {
    const p = data.manifest;
    const ck = await encodeCheckpoint(data);
    const version = `${prefix(p)}/${ck.manifestSha256}`;
    let wrote = false;
    try {
      for (const [file, bytes] of ck.files) {
        wrote = true;
        await this.#os.putBlob({ name: `${version}/${file}` }, bytes);
        this.#fault(file);
      }
      await this.#os.putBlob(
        { name: `${version}/${MANIFEST_FILE}` },
        ck.manifestBytes,
      );
      this.#fault("manifest.json");
      for (let attempt = 0;; attempt++) {
        const old = await this.#record(p);
        if (old.live && !opts.overwrite) {
          throw new ConflictError(
            `name ${JSON.stringify(p.name)} is taken: ${
              checkpointLabel(p)
            } exists (pass overwrite: true)`,
          );
        }
        try {
          await this.#os.putBlob({ name: recordName(p) }, ck.completeBytes, {
            previousRevision: old.revision,
          });
        } catch (e) {
          // Another save of this name put its record since we read it.
          if (isWrongRevision(e) && attempt < READ_TRIES) continue;
          throw e;
        }
        wrote = false; // the new version is the checkpoint now
        this.#fault("new-in-place");
        if (old.sha !== null && old.sha !== ck.manifestSha256) {
          // Only space is at stake now; `recover` deletes it if this fails.
          await this.#deleteVersion(`${prefix(p)}/${old.sha}`).catch(() => {});
          this.#fault("old-removed");
        }
        return ck.manifest;
      }
    } catch (e) {
      if (e instanceof SimulatedCrash) throw e;
      if (wrote) await this.#deleteVersion(version).catch(() => {});
      throw e;
    }
  }

  /** Follow the record and verify the checkpoint whole. */
  async load(
    p: CheckpointPathParts,
    withOptimizer: boolean,
  ): Promise<LoadedCheckpoint> {
    return await this.#read(p, async (read, label) => {
      const manifest = await verifyManifest(read, p);
      const files = await verifyFiles(read, manifest, label);
      return decodeCheckpoint(manifest, files, label, withOptimizer);
    });
  }

  /** The checkpoint's verified manifest. */
  async info(p: CheckpointPathParts): Promise<CheckpointManifest> {
    return await this.#read(p, (read) => verifyManifest(read, p));
  }

  /** The run's names whose record and manifest verify, oldest first. */
  async list(runId: string): Promise<CheckpointEntry[]> {
    const all = await this.#os.list();
    const sizes = new Map(all.map((o) => [o.name, o.size]));
    const out: CheckpointEntry[] = [];
    for (const o of all) {
      const parts = recordParts(o.name);
      if (parts === null || parts.runId !== runId) continue;
      let manifest: CheckpointManifest, sha: string;
      try {
        [manifest, sha] = await this.#read(parts, async (read, _, version) => {
          const m = await verifyManifest(read, parts);
          return [m, version() ?? ""];
        });
      } catch (e) {
        if (e instanceof NotFoundError || e instanceof CorruptCheckpointError) {
          continue;
        }
        throw e;
      }
      let size = 0;
      for (const f of Object.keys(manifest.files)) {
        size += sizes.get(`${prefix(parts)}/${sha}/${f}`) ?? 0;
      }
      let expiresAt: string | null = null;
      if (sizes.has(`${prefix(parts)}/${sha}/${EXPIRY_FILE}`)) {
        try {
          expiresAt = await this.#expiryOf(parts, sha);
        } catch (e) {
          if (e instanceof CorruptCheckpointError) continue;
          throw e;
        }
      }
      out.push({
        ...parts,
        checkpointId: `${parts.kind}/${parts.name}`,
        path: checkpointLabel(parts),
        createdAt: manifest.createdAt,
        sizeBytes: size,
        step: manifest.step,
        expiresAt,
      });
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Delete the record (the checkpoint is gone), then its version. */
  async remove(p: CheckpointPathParts): Promise<void> {
    const old = await this.#record(p);
    if (!old.live) {
      throw new NotFoundError(`path ${checkpointLabel(p)} names no checkpoint`);
    }
    await this.#os.delete(recordName(p));
    if (old.sha !== null) {
      await this.#deleteVersion(`${prefix(p)}/${old.sha}`).catch(() => {});
    }
  }

  /** `expires_at.json` in the version the record names, if there. */
  async expiry(p: CheckpointPathParts): Promise<string | null> {
    const r = await this.#record(p);
    return r.sha === null ? null : await this.#expiryOf(p, r.sha);
  }

  async #expiryOf(p: CheckpointPathParts, sha: string): Promise<string | null> {
    const bytes = await this.#get(
      `${prefix(p)}/${sha}/${EXPIRY_FILE}`,
      checkpointLabel(p),
    );
    return bytes === null ? null : parseExpiry(bytes, p);
  }

  /**
   * Put (or delete) `expires_at.json` in the version the record names: an
   * overwrite that switches the version leaves it behind with the old one.
   */
  async setExpiry(
    p: CheckpointPathParts,
    expiresAt: string | null,
  ): Promise<void> {
    const sha = await this.#read(p, async (read, _, version) => {
      await verifyManifest(read, p); // NotFoundError when there is none
      return version()!;
    });
    const name = `${prefix(p)}/${sha}/${EXPIRY_FILE}`;
    if (expiresAt === null) {
      const info = await this.#os.info(name);
      if (info && !info.deleted) await this.#os.delete(name);
    } else {
      await this.#os.putBlob({ name }, expiryBytes(expiresAt));
    }
  }

  /** The files of the version the record names, each verified. */
  async files(p: CheckpointPathParts): Promise<Map<string, Uint8Array>> {
    return await this.#read(p, (read) => verifiedCheckpointFiles(read, p));
  }

  /** Object `<run>/run.json`. */
  async putRun(run: RunRecord): Promise<void> {
    await this.#os.putBlob(
      { name: `${run.runId}/${RUN_RECORD_FILE}` },
      runRecordBytes(run),
    );
  }

  /** Object `<run>/run.json`, if there and readable. */
  async runRecord(runId: string): Promise<RunRecord | null> {
    const r = await this.#fetch(`${runId}/${RUN_RECORD_FILE}`);
    return r === null ? null : parseRunRecord(r.bytes, runId);
  }

  /** The runs named by a run record or a checkpoint's record. */
  async runIds(): Promise<string[]> {
    const ids = new Set<string>();
    for (const o of await this.#os.list()) {
      const s = o.name.split("/");
      if (s.length === 2 && s[1] === RUN_RECORD_FILE) ids.add(s[0]);
      else if (recordParts(o.name) !== null) ids.add(s[0]);
    }
    return [...ids];
  }

  /**
   * Delete the versions no record names that are older than the age
   * threshold (what crashed saves and failed deletions left). Never throws.
   */
  async recover(): Promise<string[]> {
    const problems: string[] = [];
    let all;
    try {
      all = await this.#os.list();
    } catch (e) {
      return [`listing bucket ${this.bucket}: ${errorText(e)}`];
    }
    const named = new Set<string>();
    for (const o of all) {
      const parts = recordParts(o.name);
      if (parts === null) continue;
      try {
        const r = await this.#record(parts);
        if (r.sha !== null) named.add(`${prefix(parts)}/${r.sha}`);
        // A record whose version cannot be read keeps everything of its name.
        else if (r.live) named.add(`${prefix(parts)}/*`);
      } catch (e) {
        problems.push(`reading ${o.name}: ${errorText(e)}`);
        named.add(`${prefix(parts)}/*`);
      }
    }
    const now = Date.now();
    for (const o of all) {
      const v = versionOf(o.name);
      if (v === null || named.has(v.version) || named.has(`${v.prefix}/*`)) {
        continue;
      }
      if (now - Date.parse(o.mtime) < this.#staleMs) continue;
      try {
        await this.#os.delete(o.name);
      } catch (e) {
        problems.push(`deleting ${o.name}: ${errorText(e)}`);
      }
    }
    return problems;
  }

  /** A NATS or JetStream fault as a StorageError naming the `bios://` path. */
  storageError(e: unknown, op: StorageOp): unknown {
    const local = asStorageError(e, op); // a PEFT folder on the node's disk
    if (local !== e || e instanceof BiosError || e instanceof SimulatedCrash) {
      return local;
    }
    const text = errorText(e);
    const full = /insufficient resources|maximum bytes|storage/i.test(text);
    const refused = /permission|authoriz/i.test(text);
    const what = full
      ? "the checkpoint object store is full"
      : refused
      ? "the node may not use the checkpoint object store"
      : "the checkpoint object store failed";
    const advice = refused
      ? "the cluster's operator must give the node JetStream permissions first"
      : full
      ? `free space in bucket ${this.bucket} and ${op.retry}`
      : `${op.retry} later`;
    return new StorageError(
      `${op.what} failed: ${what} (${
        firstLine(text)
      }); ${op.outcome} — ${advice}`,
      !refused,
      { cause: e },
    );
  }

  /**
   * Run `body` over a reader of the version the record names (`version()`
   * says which, once the record is read); when it finds
   * that version damaged while an overwrite switched the record, run it again
   * on the new one.
   */
  async #read<T>(
    p: CheckpointPathParts,
    body: (
      read: ReadCheckpointFile,
      label: string,
      version: () => string | null,
    ) => Promise<T>,
  ): Promise<T> {
    const label = checkpointLabel(p);
    for (let attempt = 1;; attempt++) {
      let revision = 0;
      let sha: string | null = null;
      const read: ReadCheckpointFile = async (file) => {
        if (file === COMPLETE_FILE) {
          const r = await this.#record(p);
          revision = r.revision;
          sha = r.sha;
          return r.bytes;
        }
        if (sha === null) return null;
        return await this.#get(`${prefix(p)}/${sha}/${file}`, label);
      };
      try {
        return await body(read, label, () => sha);
      } catch (e) {
        if (!(e instanceof CorruptCheckpointError) || attempt >= READ_TRIES) {
          throw e;
        }
        const now = await this.#os.info(recordName(p));
        if ((now?.revision ?? 0) === revision) throw e;
      }
    }
  }

  /**
   * The record as it is now: its revision, bytes and the version it names.
   * An absent record's revision is that of its last deletion (or 0), so a
   * put made with it fails if any record appeared since.
   */
  async #record(p: CheckpointPathParts): Promise<{
    revision: number;
    live: boolean;
    bytes: Uint8Array | null;
    sha: string | null;
  }> {
    const name = recordName(p);
    for (let attempt = 1;; attempt++) {
      const info = await this.#os.info(name);
      if (info === null || info.deleted) {
        return {
          revision: info?.revision ?? 0,
          live: false,
          bytes: null,
          sha: null,
        };
      }
      try {
        const r = await this.#fetch(name);
        // Replaced or deleted since `info`: read it again.
        if (r === null) continue;
        return { ...r, live: true, sha: shaOf(r.bytes) };
      } catch (e) {
        if (attempt >= READ_TRIES) throw e;
      }
    }
  }

  /**
   * An object's bytes and revision, or null when it is absent, or when it is
   * replaced or deleted while read (the client's read of an object whose
   * chunks are purged would wait for ever: a read that stalls has the
   * object's revision checked every second).
   */
  async #fetch(
    name: string,
  ): Promise<{ bytes: Uint8Array; revision: number } | null> {
    const r = await this.#os.get(name);
    if (r === null) return null;
    const reader = r.data.getReader();
    let progressed = false, gone = false;
    const watch = setInterval(() => {
      if (progressed) {
        progressed = false;
        return;
      }
      this.#os.info(name).then((now) => {
        if (now === null || now.deleted || now.revision !== r.info.revision) {
          gone = true;
          reader.cancel().catch(() => {});
        }
      }, () => {});
    }, STALL_CHECK_MS);
    const parts: Uint8Array[] = [];
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        progressed = true;
        parts.push(value);
      }
    } catch (e) {
      if (!gone) throw e;
    } finally {
      clearInterval(watch);
    }
    if (gone) return null;
    const err = await r.error;
    if (err) throw err;
    // A plain Uint8Array of its own: the chunks may be Node Buffers, views
    // into a shared pool, which the safetensors reader cannot copy from.
    const bytes = new Uint8Array(parts.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of parts) {
      bytes.set(c, at);
      at += c.length;
    }
    return { bytes, revision: r.info.revision };
  }

  /**
   * A data file's bytes, or null when absent (or deleted while read); a
   * chunk that fails the object's digest is damage.
   */
  async #get(name: string, label: string): Promise<Uint8Array | null> {
    try {
      return (await this.#fetch(name))?.bytes ?? null;
    } catch (e) {
      if (/digests do not match/.test(errorText(e))) {
        const file = name.slice(name.lastIndexOf("/") + 1);
        throw new CorruptCheckpointError(
          `checkpoint ${label} is damaged: file ${file} does not match the object store's digest`,
        );
      }
      throw e;
    }
  }

  async #deleteVersion(version: string): Promise<void> {
    for (const file of [MANIFEST_FILE, ...DATA_FILES, EXPIRY_FILE]) {
      const info = await this.#os.info(`${version}/${file}`);
      if (info && !info.deleted) await this.#os.delete(`${version}/${file}`);
    }
  }
}

const DATA_FILES = [
  "adapter_config.json",
  "adapter_model.safetensors",
  "optimizer.safetensors",
] as const;

function prefix(p: CheckpointPathParts): string {
  return `${p.runId}/${p.kind}/${p.name}`;
}

function recordName(p: CheckpointPathParts): string {
  return `${prefix(p)}/${COMPLETE_FILE}`;
}

/** The path of a record's object name, or null for any other object. */
function recordParts(name: string): CheckpointPathParts | null {
  const s = name.split("/");
  if (s.length !== 4 || s[3] !== COMPLETE_FILE) return null;
  if (s[1] !== "weights" && s[1] !== "sampler_weights") return null;
  return { runId: s[0], kind: s[1], name: s[2] };
}

/** The version folder an object belongs to, or null for a record. */
function versionOf(name: string): { prefix: string; version: string } | null {
  const s = name.split("/");
  if (s.length !== 5 || !SHA.test(s[3])) return null;
  return { prefix: s.slice(0, 3).join("/"), version: s.slice(0, 4).join("/") };
}

/** The version a record names, or null when it names none readably. */
function shaOf(bytes: Uint8Array): string | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes))?.manifest_sha256;
    return typeof v === "string" && SHA.test(v) ? v : null;
  } catch {
    return null;
  }
}

function isWrongRevision(e: unknown): boolean {
  return /wrong last sequence/i.test(errorText(e));
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function firstLine(s: string): string {
  return s.split("\n")[0];
}
