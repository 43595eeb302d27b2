/**
 * A checkpoint's bytes, the same wherever it is stored: what a save writes
 * (the PEFT adapter files, the optimizer file, `manifest.json` with the sha256
 * of each, and the `checkpoint_complete` record with the manifest's sha256),
 * and what a load makes of verified files (checked tensor by tensor against
 * the manifest).
 *
 * @module
 */
import { InvalidArgumentError } from "../runtime/errors.ts";
import { writeSafetensors } from "../model/safetensors.ts";
import type { HostTensors } from "../model/lora.ts";
import {
  CHECKPOINT_FORMAT,
  type CheckpointDataFile,
  type CheckpointManifest,
} from "../protocol/types/checkpoint_manifest.ts";
import {
  adapterConfig,
  checkAdapterConfig,
  checkAdapterLayout,
  checkOptimizer,
  hostTensors,
  parseCheckpointTensors,
  sha256Hex,
} from "./checkpoint_verify.ts";

/** A checkpoint's contents in host memory. */
export interface CheckpointData {
  /** What the saver says; the save adds the format, the time and the hashes. */
  manifest: Omit<CheckpointManifest, "files" | "createdAt" | "format">;
  /** The adapter's tensors, by PEFT name. */
  params: HostTensors;
  /** Adam moments (kind `weights` only). */
  optimizer?: { m: HostTensors; v: HostTensors };
}

/** A checkpoint read back and verified. */
export interface LoadedCheckpoint {
  /** Its manifest. */
  manifest: CheckpointManifest;
  /** The adapter's tensors. */
  params: HostTensors;
  /** Adam moments, when asked for. */
  optimizer?: { m: HostTensors; v: HostTensors };
}

/** The bytes of one checkpoint, in the order a save writes them. */
export interface EncodedCheckpoint {
  /** The data files, adapter first. */
  files: [CheckpointDataFile, Uint8Array][];
  /** The manifest written with them. */
  manifest: CheckpointManifest;
  /** `manifest.json`'s bytes. */
  manifestBytes: Uint8Array;
  /** The sha256 of `manifestBytes`, in hex. */
  manifestSha256: string;
  /** `checkpoint_complete`'s bytes: `{ "manifest_sha256": "<hex>" }`. */
  completeBytes: Uint8Array;
}

/** JSON as a checkpoint writes it: indented, with a final newline. */
export function jsonBytes(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v, null, 2) + "\n");
}

/** The bytes of a checkpoint of `data`, created now. */
export async function encodeCheckpoint(
  data: CheckpointData,
): Promise<EncodedCheckpoint> {
  const m = data.manifest;
  const files: [CheckpointDataFile, Uint8Array][] = [
    ["adapter_config.json", jsonBytes(adapterConfig(m))],
    [
      "adapter_model.safetensors",
      writeSafetensors(data.params, { format: "pt" }),
    ],
  ];
  if (data.optimizer) {
    const opt = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [k, t] of data.optimizer.m) opt.set(`m.${k}`, t);
    for (const [k, t] of data.optimizer.v) opt.set(`v.${k}`, t);
    files.push([
      "optimizer.safetensors",
      writeSafetensors(opt, { step: String(m.step) }),
    ]);
  }
  const hashes: CheckpointManifest["files"] = {
    "adapter_config.json": "",
    "adapter_model.safetensors": "",
  };
  for (const [file, bytes] of files) hashes[file] = await sha256Hex(bytes);
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    ...m,
    createdAt: new Date().toISOString(),
    files: hashes,
  };
  const manifestBytes = jsonBytes(manifest);
  const manifestSha256 = await sha256Hex(manifestBytes);
  return {
    files,
    manifest,
    manifestBytes,
    manifestSha256,
    completeBytes: jsonBytes({ manifest_sha256: manifestSha256 }),
  };
}

/**
 * The tensors of a checkpoint whose manifest and data files are verified
 * (`files` from `verifyFiles`): the adapter config must say what the
 * manifest says, the adapter and optimizer tensors must be exactly what it
 * describes. The optimizer file of a weights checkpoint is checked even when
 * not asked for.
 *
 * @throws {CorruptCheckpointError} for anything that does not match
 * @throws {InvalidArgumentError} (field `path`) when the optimizer is asked
 *   for and the checkpoint has none
 */
export function decodeCheckpoint(
  manifest: CheckpointManifest,
  files: Map<string, Uint8Array>,
  label: string,
  withOptimizer: boolean,
): LoadedCheckpoint {
  checkAdapterConfig(files.get("adapter_config.json")!, manifest, label);
  const adapter = "adapter_model.safetensors";
  const params = hostTensors(
    parseCheckpointTensors(files.get(adapter)!, adapter, label),
    adapter,
    label,
  );
  checkAdapterLayout(params, manifest, label);
  const optBytes = files.get("optimizer.safetensors");
  const optimizer = optBytes === undefined ? undefined : checkOptimizer(
    parseCheckpointTensors(optBytes, "optimizer.safetensors", label),
    params,
    manifest,
    label,
  );
  if (!withOptimizer) return { manifest, params };
  if (!optimizer) {
    throw new InvalidArgumentError(
      "path",
      `path ${label} holds no optimizer state (a sampler_weights checkpoint)`,
    );
  }
  return { manifest, params, optimizer };
}
