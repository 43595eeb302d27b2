/**
 * Checkpoints on the filesystem, written whole or not at all.
 *
 * Layout of `<root>/<runId>/<kind>/<name>/`:
 * - `adapter_config.json`, `adapter_model.safetensors`: the LoRA adapter in
 *   PEFT's layout, loadable by standard tools as it is;
 * - `optimizer.safetensors` (kind `weights` only): Adam moments `m.<key>`,
 *   `v.<key>`, with the step count in its metadata;
 * - `manifest.json`: base model, LoRA config, step, sha256 of every file;
 * - `checkpoint_complete`: an empty marker, as the anchor's archives carry.
 *
 * A save writes into a hidden temporary folder, fsyncs each file, and renames
 * the folder into place, then fsyncs the parent: a crash leaves either the old
 * state or the new one, and temporary folders are never listed.
 *
 * @module
 */
import {
  BiosError,
  NotFoundError,
  registerWireError,
} from "../runtime/errors.ts";
import { readSafetensorsFile, writeSafetensors } from "../model/safetensors.ts";
import type { HostTensors } from "../model/lora.ts";

/** The two kinds of checkpoint, as in `bios://<run>/<kind>/<name>`. */
export type CheckpointKind = "weights" | "sampler_weights";

/** What `manifest.json` records. */
export interface CheckpointManifest {
  format: "bios-checkpoint/1";
  runId: string;
  kind: CheckpointKind;
  name: string;
  baseModel: string;
  lora: {
    rank: number;
    alpha: number;
    dropout: number;
    targets: string[];
    seed: number;
  };
  /** Optimizer steps taken when saved. */
  step: number;
  /** Last training-op sequence number applied when saved. */
  seq: number;
  createdAt: string;
  /** File name → sha256 (hex) of its bytes. */
  files: Record<string, string>;
}

/** A checkpoint's contents in host memory. */
export interface CheckpointData {
  manifest: Omit<CheckpointManifest, "files" | "createdAt" | "format">;
  params: HostTensors;
  /** Adam moments (kind `weights` only). */
  optimizer?: { m: HostTensors; v: HostTensors };
}

/** A saved checkpoint as listed. */
export interface CheckpointEntry {
  runId: string;
  kind: CheckpointKind;
  name: string;
  path: string;
  createdAt: string;
  sizeBytes: number;
}

/** The checkpoint is damaged: a hash does not match, or a file is missing. */
export class CorruptCheckpointError extends BiosError {
  /** @param message what is wrong */
  constructor(message: string) {
    super("corrupt_checkpoint", message);
    this.name = "CorruptCheckpointError";
  }
}
// Comes back from the store actor as itself, not as a plain BiosError.
registerWireError(CorruptCheckpointError);

/** Test hook: called after each file is written, to simulate a crash mid-save. */
export type SaveFault = (fileName: string) => void;

/** Folder of a checkpoint. */
export function checkpointDir(
  root: string,
  runId: string,
  kind: CheckpointKind,
  name: string,
): string {
  return `${root}/${runId}/${kind}/${name}`;
}

/** The PEFT `adapter_config.json` for a LoRA config. */
export function adapterConfig(
  m: CheckpointData["manifest"],
): Record<string, unknown> {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: m.baseModel,
    r: m.lora.rank,
    lora_alpha: m.lora.alpha,
    lora_dropout: m.lora.dropout,
    target_modules: m.lora.targets,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
  };
}

/**
 * Write a checkpoint atomically. Throws if it exists and `overwrite` is false
 * (the caller checks first, to give the user a ConflictError).
 */
export async function writeCheckpoint(
  root: string,
  data: CheckpointData,
  opts: { overwrite?: boolean; fault?: SaveFault } = {},
): Promise<CheckpointManifest> {
  const m = data.manifest;
  const parent = `${root}/${m.runId}/${m.kind}`;
  await Deno.mkdir(parent, { recursive: true });
  const final = `${parent}/${m.name}`;
  const tmp = `${parent}/.tmp-${m.name}-${crypto.randomUUID()}`;
  await Deno.mkdir(tmp);
  const files: Record<string, string> = {};
  const put = async (file: string, bytes: Uint8Array) => {
    await writeSynced(`${tmp}/${file}`, bytes);
    files[file] = await sha256Hex(bytes);
    opts.fault?.(file);
  };
  try {
    await put("adapter_config.json", jsonBytes(adapterConfig(m)));
    await put(
      "adapter_model.safetensors",
      writeSafetensors(data.params, { format: "pt" }),
    );
    if (data.optimizer) {
      const opt = new Map<string, { shape: number[]; data: Float32Array }>();
      for (const [k, t] of data.optimizer.m) opt.set(`m.${k}`, t);
      for (const [k, t] of data.optimizer.v) opt.set(`v.${k}`, t);
      await put(
        "optimizer.safetensors",
        writeSafetensors(opt, { step: String(m.step) }),
      );
    }
    const manifest: CheckpointManifest = {
      format: "bios-checkpoint/1",
      ...m,
      createdAt: new Date().toISOString(),
      files,
    };
    await writeSynced(`${tmp}/manifest.json`, jsonBytes(manifest));
    opts.fault?.("manifest.json");
    await writeSynced(`${tmp}/checkpoint_complete`, new Uint8Array());
    if (await exists(final)) {
      if (!opts.overwrite) {
        throw new Error(`checkpoint ${final} already exists`);
      }
      const trash = `${parent}/.trash-${m.name}-${crypto.randomUUID()}`;
      await Deno.rename(final, trash);
      await Deno.rename(tmp, final);
      await Deno.remove(trash, { recursive: true });
    } else {
      await Deno.rename(tmp, final);
    }
    await syncDir(parent);
    return manifest;
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Read and verify a checkpoint; NotFoundError if absent, CorruptCheckpointError
 * if damaged. Messages name the checkpoint as `label` (its `bios://` path when
 * the caller has one, so users never see the node's folders).
 */
export async function readCheckpoint(
  dir: string,
  withOptimizer: boolean,
  label: string = dir,
): Promise<
  {
    manifest: CheckpointManifest;
    params: HostTensors;
    optimizer?: { m: HostTensors; v: HostTensors };
  }
> {
  let manifestText: string;
  try {
    manifestText = await Deno.readTextFile(`${dir}/manifest.json`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`no checkpoint at ${dir}`);
    }
    throw e;
  }
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(manifestText);
  } catch {
    throw new CorruptCheckpointError(
      `checkpoint ${label}: manifest.json is not valid JSON`,
    );
  }
  for (const [file, hash] of Object.entries(manifest.files ?? {})) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${dir}/${file}`);
    } catch {
      throw new CorruptCheckpointError(
        `checkpoint ${label}: file ${file} is missing`,
      );
    }
    if (await sha256Hex(bytes) !== hash) {
      throw new CorruptCheckpointError(
        `checkpoint ${label}: file ${file} does not match its sha256 in manifest.json`,
      );
    }
  }
  const params = toHost(
    (await readSafetensorsFile(`${dir}/adapter_model.safetensors`)).tensors,
  );
  if (!withOptimizer) return { manifest, params };
  if (!manifest.files["optimizer.safetensors"]) {
    throw new CorruptCheckpointError(
      `checkpoint ${label} has no optimizer state`,
    );
  }
  const opt = toHost(
    (await readSafetensorsFile(`${dir}/optimizer.safetensors`)).tensors,
  );
  const m: HostTensors = new Map(), v: HostTensors = new Map();
  for (const [k, t] of opt) {
    if (k.startsWith("m.")) m.set(k.slice(2), t);
    else if (k.startsWith("v.")) v.set(k.slice(2), t);
  }
  return { manifest, params, optimizer: { m, v } };
}

/** Read just a checkpoint's manifest (NotFoundError if absent). */
export async function readManifest(dir: string): Promise<CheckpointManifest> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`no checkpoint at ${dir}`);
    }
    throw new CorruptCheckpointError(
      `checkpoint manifest ${dir}/manifest.json is unreadable`,
    );
  }
}

/** List a run's complete checkpoints (temporary folders are skipped), oldest first. */
export async function listCheckpoints(
  root: string,
  runId: string,
): Promise<CheckpointEntry[]> {
  const out: CheckpointEntry[] = [];
  for (const kind of ["weights", "sampler_weights"] as const) {
    const parent = `${root}/${runId}/${kind}`;
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(parent)];
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isDirectory || e.name.startsWith(".")) continue;
      const dir = `${parent}/${e.name}`;
      if (!(await exists(`${dir}/checkpoint_complete`))) continue;
      const manifest = await readManifest(dir).catch(() => undefined);
      if (!manifest) continue;
      let size = 0;
      for (const f of Object.keys(manifest.files)) {
        size += (await Deno.stat(`${dir}/${f}`)).size;
      }
      out.push({
        runId,
        kind,
        name: e.name,
        path: `bios://${runId}/${kind}/${e.name}`,
        createdAt: manifest.createdAt,
        sizeBytes: size,
      });
    }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/**
 * Remove `.tmp-*` and `.trash-*` folders older than `ageMs` under
 * `<root>/<run>/<kind>/`: what a crash in the middle of a save leaves.
 * Returns how many were removed.
 */
export async function removeStaleTemporaries(
  root: string,
  ageMs: number,
): Promise<number> {
  let removed = 0;
  const now = Date.now();
  const dirs = async (p: string) => {
    try {
      return (await Array.fromAsync(Deno.readDir(p))).filter((e) =>
        e.isDirectory
      ).map((e) => e.name);
    } catch {
      return [];
    }
  };
  for (const run of await dirs(root)) {
    for (const kind of ["weights", "sampler_weights"]) {
      const parent = `${root}/${run}/${kind}`;
      for (const name of await dirs(parent)) {
        if (!name.startsWith(".tmp-") && !name.startsWith(".trash-")) continue;
        const st = await Deno.stat(`${parent}/${name}`).catch(() => undefined);
        if (!st?.mtime || now - st.mtime.getTime() < ageMs) continue;
        await Deno.remove(`${parent}/${name}`, { recursive: true }).catch(
          () => {},
        );
        removed++;
      }
    }
  }
  return removed;
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function toHost(
  tensors: Map<string, { shape: number[]; data: Float32Array | Int32Array }>,
): HostTensors {
  const out: HostTensors = new Map();
  for (const [k, t] of tensors) {
    out.set(k, {
      shape: t.shape,
      data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data),
    });
  }
  return out;
}

function jsonBytes(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v, null, 2) + "\n");
}

async function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
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

async function syncDir(path: string): Promise<void> {
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

/** Hex sha256 of bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const h = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return [...new Uint8Array(h)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}
