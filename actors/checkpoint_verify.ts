/**
 * Verifying a checkpoint folder as a whole before anything in it is used.
 *
 * The chain of trust: `checkpoint_complete` (written last) holds the sha256 of
 * `manifest.json`; the manifest, parsed strictly, holds the sha256 of each
 * data file and must name the very path being read; `adapter_config.json`
 * must say what the manifest says; the adapter's tensors must be exactly a
 * rank-`r` adapter of the manifest's targets, and the optimizer's moments
 * exactly those tensors' `m.`/`v.` twins at the manifest's step. Anything
 * else is a {@link CorruptCheckpointError} naming the `bios://` path; a folder
 * without a completion record is no checkpoint at all (NotFoundError).
 *
 * Raw filesystem errors other than "not found" pass through: the store turns
 * them into StorageErrors.
 *
 * @module
 */
import {
  BiosError,
  InvalidArgumentError,
  NotFoundError,
  registerWireError,
} from "../runtime/errors.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import type { CheckpointPathParts } from "../protocol/types/checkpoint_path.ts";
import {
  CHECKPOINT_DATA_FILES,
  type CheckpointComplete,
  CheckpointCompleteSchema,
  type CheckpointManifest,
  CheckpointManifestSchema,
  COMPLETE_FILE,
  MANIFEST_FILE,
} from "../protocol/types/checkpoint_manifest.ts";
import {
  parseSafetensors,
  type SafetensorsContents,
} from "../model/safetensors.ts";
import {
  adaptedModules,
  type HostTensors,
  type LoraTarget,
  modulePath,
  peftKeys,
} from "../model/lora.ts";
import type { LlamaConfig } from "../model/config.ts";

/** The checkpoint is damaged: a hash does not match, or a file is missing. */
export class CorruptCheckpointError extends BiosError {
  /** @param message what is wrong, naming the checkpoint's `bios://` path */
  constructor(message: string) {
    super("corrupt_checkpoint", message);
    this.name = "CorruptCheckpointError";
  }
}
// Comes back from the store actor as itself, not as a plain BiosError.
registerWireError(CorruptCheckpointError);

/** The `bios://` path of a checkpoint, for messages. */
export function checkpointLabel(parts: CheckpointPathParts): string {
  return `bios://${parts.runId}/${parts.kind}/${parts.name}`;
}

/** The PEFT `adapter_config.json` for a manifest's base model and LoRA config. */
export function adapterConfig(
  m: Pick<CheckpointManifest, "baseModel" | "lora">,
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

function damaged(label: string, what: string): CorruptCheckpointError {
  return new CorruptCheckpointError(`checkpoint ${label} is damaged: ${what}`);
}

/**
 * Reads one file of a checkpoint by name (`checkpoint_complete`,
 * `manifest.json`, a data file): its bytes, or null when it is not there.
 * Other faults pass through as they are (a storage turns them into
 * StorageErrors).
 */
export type ReadCheckpointFile = (file: string) => Promise<Uint8Array | null>;

/** The files of the checkpoint folder `dir`, read from the disk. */
export function folderReader(dir: string): ReadCheckpointFile {
  return async (file) => {
    try {
      return await Deno.readFile(`${dir}/${file}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      if (e instanceof Deno.errors.NotADirectory) return null;
      throw e;
    }
  };
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
}

/**
 * The manifest of the checkpoint in `dir`, verified against its completion
 * record and against `parts` (the path it is read as).
 *
 * @throws {NotFoundError} when there is no folder or no completion record
 * @throws {CorruptCheckpointError} for a bad record or manifest
 */
export async function readVerifiedManifest(
  dir: string,
  parts: CheckpointPathParts,
): Promise<CheckpointManifest> {
  return await verifyManifest(folderReader(dir), parts, async () => {
    const hasFolder = await Deno.stat(dir).then(
      (s) => s.isDirectory,
      () => false,
    );
    return hasFolder
      ? `its save never completed: no ${COMPLETE_FILE} record`
      : undefined;
  });
}

/**
 * The manifest of a checkpoint whose files `read` gives, verified against
 * its completion record and against `parts` (the path it is read as).
 *
 * @param why when there is no completion record, what to add to the
 *   NotFoundError's message (undefined: nothing)
 * @throws {NotFoundError} when there is no completion record
 * @throws {CorruptCheckpointError} for a bad record or manifest
 */
export async function verifyManifest(
  read: ReadCheckpointFile,
  parts: CheckpointPathParts,
  why: () => Promise<string | undefined> = () => Promise.resolve(undefined),
): Promise<CheckpointManifest> {
  const label = checkpointLabel(parts);
  const marker = await read(COMPLETE_FILE);
  if (marker === null) {
    const reason = await why();
    throw new NotFoundError(
      reason === undefined
        ? `path ${label} names no checkpoint`
        : `path ${label} names no checkpoint (${reason})`,
    );
  }
  let record: CheckpointComplete;
  try {
    record = parseOrThrow(CheckpointCompleteSchema, parseJson(marker), "");
  } catch {
    throw damaged(
      label,
      `${COMPLETE_FILE} does not hold the manifest's sha256 (written by an older Bios, or changed)`,
    );
  }
  const bytes = await read(MANIFEST_FILE);
  if (bytes === null) throw damaged(label, `${MANIFEST_FILE} is missing`);
  if (await sha256Hex(bytes) !== record.manifest_sha256) {
    throw damaged(
      label,
      `${MANIFEST_FILE} does not match the sha256 in ${COMPLETE_FILE} (it was changed after the save)`,
    );
  }
  const json = parseJson(bytes);
  if (json === undefined) {
    throw damaged(label, `${MANIFEST_FILE} is not valid JSON`);
  }
  let m: CheckpointManifest;
  try {
    m = parseOrThrow(CheckpointManifestSchema, json, "");
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    throw damaged(label, `${MANIFEST_FILE}: ${e.message}`);
  }
  if (
    m.runId !== parts.runId || m.kind !== parts.kind || m.name !== parts.name
  ) {
    throw damaged(
      label,
      `${MANIFEST_FILE} describes ${checkpointLabel(m)}, not this checkpoint`,
    );
  }
  return m;
}

/**
 * The bytes of each data file the manifest lists, every one checked against
 * its sha256.
 */
export async function readVerifiedFiles(
  dir: string,
  m: CheckpointManifest,
  label: string,
): Promise<Map<string, Uint8Array>> {
  return await verifyFiles(folderReader(dir), m, label);
}

/**
 * The bytes of each data file the manifest lists, read by `read`, every one
 * checked against its sha256.
 */
export async function verifyFiles(
  read: ReadCheckpointFile,
  m: CheckpointManifest,
  label: string,
): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  // Only the fixed names: the schema refuses any other key.
  for (const file of CHECKPOINT_DATA_FILES) {
    const hash = m.files[file];
    if (hash === undefined) continue;
    const bytes = await read(file);
    if (bytes === null) throw damaged(label, `file ${file} is missing`);
    if (await sha256Hex(bytes) !== hash) {
      throw damaged(
        label,
        `file ${file} does not match its sha256 in ${MANIFEST_FILE}`,
      );
    }
    out.set(file, bytes);
  }
  return out;
}

/** Refuse an `adapter_config.json` that says something the manifest does not. */
export function checkAdapterConfig(
  bytes: Uint8Array,
  m: CheckpointManifest,
  label: string,
): void {
  const got = parseJson(bytes) as Record<string, unknown> | undefined;
  if (got === null || typeof got !== "object" || Array.isArray(got)) {
    throw damaged(label, "adapter_config.json is not a JSON object");
  }
  for (const [k, want] of Object.entries(adapterConfig(m))) {
    const a = JSON.stringify(got[k]), b = JSON.stringify(want);
    if (a !== b) {
      throw damaged(
        label,
        `adapter_config.json has ${k} ${
          a ?? "missing"
        }, but ${MANIFEST_FILE} says ${b}`,
      );
    }
  }
}

/** Parse a safetensors file of the checkpoint; a malformed one is damage. */
export function parseCheckpointTensors(
  bytes: Uint8Array,
  file: string,
  label: string,
): SafetensorsContents {
  try {
    return parseSafetensors(bytes);
  } catch (e) {
    throw damaged(
      label,
      `${file} is not a valid safetensors file (${(e as Error).message})`,
    );
  }
}

/** Float tensors in host form; any other dtype is damage. */
export function hostTensors(
  c: SafetensorsContents,
  file: string,
  label: string,
): HostTensors {
  const out: HostTensors = new Map();
  for (const [k, t] of c.tensors) {
    if (!(t.data instanceof Float32Array)) {
      throw damaged(label, `${file} tensor ${k} is ${t.dtype}, not a float`);
    }
    out.set(k, { shape: t.shape, data: t.data });
  }
  return out;
}

const ADAPTER_KEY =
  /^base_model\.model\.(lm_head|model\.layers\.(0|[1-9][0-9]*)\.(self_attn|mlp)\.([a-z_]+))\.lora_([AB])\.weight$/;

/**
 * Refuse adapter tensors that are not exactly a rank-`r` LoRA adapter of the
 * manifest's targets over layers `0..L-1` (plus `lm_head` when targeted):
 * no extra tensor, none missing, every A `[r, in]`, every B `[out, r]`, one
 * shape per target across layers.
 */
export function checkAdapterLayout(
  params: HostTensors,
  m: CheckpointManifest,
  label: string,
): void {
  const bad = (what: string) =>
    damaged(label, `adapter_model.safetensors ${what}`);
  const { rank, targets } = m.lora;
  const layers = new Set<number>();
  const shapes = new Map<string, string>();
  for (const [key, t] of params) {
    const match = ADAPTER_KEY.exec(key);
    const target = match?.[1] === "lm_head" ? "lm_head" : match?.[4];
    const layer = Number(match?.[2]);
    if (
      !match || !targets.includes(target as LoraTarget) ||
      (target !== "lm_head" &&
        modulePath(target as LoraTarget, layer) !== match[1])
    ) {
      throw bad(
        `holds tensor ${key}, which is no adapter of [${targets.join(", ")}]`,
      );
    }
    if (target !== "lm_head") layers.add(layer);
    const side = match[5];
    if (t.shape.length !== 2 || t.shape[side === "A" ? 0 : 1] !== rank) {
      throw bad(
        `tensor ${key} has shape [${t.shape}], not a rank ${rank} lora_${side}`,
      );
    }
    const first = shapes.get(`${target}.${side}`);
    if (first !== undefined && first !== t.shape.join(",")) {
      throw bad(
        `tensor ${key} has shape [${t.shape}], other layers [${first}]`,
      );
    }
    shapes.set(`${target}.${side}`, t.shape.join(","));
  }
  const numLayers = layers.size === 0 ? 1 : Math.max(...layers) + 1;
  for (const target of targets) {
    const paths = target === "lm_head"
      ? ["lm_head"]
      : Array.from({ length: numLayers }, (_, l) => modulePath(target, l));
    for (const path of paths) {
      const k = peftKeys(path);
      for (const key of [k.a, k.b]) {
        if (!params.has(key)) throw bad(`lacks tensor ${key}`);
      }
    }
  }
}

/**
 * Split optimizer tensors into Adam moments; refuse any that are not exactly
 * the `m.`/`v.` twins of the adapter tensors, or a step that is not the
 * manifest's.
 */
export function checkOptimizer(
  opt: SafetensorsContents,
  params: HostTensors,
  m: CheckpointManifest,
  label: string,
): { m: HostTensors; v: HostTensors } {
  const bad = (what: string) => damaged(label, `optimizer.safetensors ${what}`);
  const all = hostTensors(opt, "optimizer.safetensors", label);
  const moments = { m: new Map(), v: new Map() } as {
    m: HostTensors;
    v: HostTensors;
  };
  for (const [k, t] of all) {
    const which = k.slice(0, 2) === "m."
      ? "m"
      : k.slice(0, 2) === "v."
      ? "v"
      : "";
    const p = which ? params.get(k.slice(2)) : undefined;
    if (!which || !p) {
      throw bad(`holds tensor ${k}, the moment of no adapter tensor`);
    }
    if (t.shape.join(",") !== p.shape.join(",")) {
      throw bad(`tensor ${k} has shape [${t.shape}], its weight [${p.shape}]`);
    }
    moments[which as "m" | "v"].set(k.slice(2), t);
  }
  for (const k of params.keys()) {
    if (!moments.m.has(k)) throw bad(`lacks tensor m.${k}`);
    if (!moments.v.has(k)) throw bad(`lacks tensor v.${k}`);
  }
  if (opt.metadata.step !== String(m.step)) {
    throw bad(
      `records step ${opt.metadata.step}, but ${MANIFEST_FILE} says ${m.step}`,
    );
  }
  return moments;
}

/**
 * Refuse an adapter that does not fit `cfg` (the base model the manifest
 * names): the tensor names and shapes must be exactly what that model's
 * adapter of this rank and these targets has.
 */
export function checkFitsModel(
  params: HostTensors,
  m: CheckpointManifest,
  cfg: LlamaConfig,
  label: string,
): void {
  const want = new Map<string, number[]>();
  const spec = { ...m.lora, targets: m.lora.targets as LoraTarget[] };
  const all = { first: 0, last: cfg.numLayers, head: true };
  for (const mod of adaptedModules(cfg, spec, all)) {
    const k = peftKeys(mod.path);
    want.set(k.a, [m.lora.rank, mod.shape[1]]);
    want.set(k.b, [mod.shape[0], m.lora.rank]);
  }
  const misfit = (what: string) =>
    damaged(
      label,
      `its adapter does not fit baseModel ${m.baseModel}: ${what}`,
    );
  for (const [k, shape] of want) {
    const t = params.get(k);
    if (!t) throw misfit(`tensor ${k} is missing`);
    if (t.shape.join(",") !== shape.join(",")) {
      throw misfit(
        `tensor ${k} has shape [${t.shape}], the model needs [${shape}]`,
      );
    }
  }
  for (const k of params.keys()) {
    if (!want.has(k)) throw misfit(`tensor ${k} has no place in the model`);
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
