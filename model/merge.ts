/**
 * Merging a LoRA adapter into its base model: a full Hugging Face folder
 * that any tool loads as a plain model, with no adapter.
 *
 * Each adapted weight becomes `W' = W + (alpha / r) · B·A`, the product
 * summed in float64 and `W'` rounded to float32; a base stored in F16 or
 * BF16 is written in its own dtype, `W'` rounded once more (to nearest,
 * ties to even), and every weight the adapter does not touch is copied bit
 * for bit. On a model whose `lm_head` is its embedding (tied), an adapter on
 * `lm_head` changes the head only: the merged folder gets its own
 * `lm_head.weight` (embedding + update) and `tie_word_embeddings: false`,
 * and the embedding stays as it was (PEFT's `merge_and_unload` would fold
 * the update into the shared matrix, changing the input embedding too).
 *
 * The folder holds `config.json` (the base's, with only that field
 * changed), the weights (`model.safetensors`, or shards
 * `model-0000i-of-0000N.safetensors` with `model.safetensors.index.json`
 * past `maxShardBytes`), and the base's generation and tokenizer files.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mergeLora } from "./merge.ts";
 * import { loadModelFolder, tensorF32, writeModelFolder } from "./model_folder.ts";
 * import { llamaTensorShapes, parseLlamaConfig } from "./config.ts";
 * import { ByteTokenizer } from "./byte_tokenizer.ts";
 * const config = parseLlamaConfig({ hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1,
 *   num_attention_heads: 2, vocab_size: 259, tie_word_embeddings: true });
 * const tensors = new Map(llamaTensorShapes(config).map(([name, shape]) =>
 *   [name, { shape, data: new Float32Array(shape.reduce((a, d) => a * d, 1)) }]));
 * const root = await Deno.makeTempDir();
 * await writeModelFolder(`${root}/base`, config, tensors, new ByteTokenizer());
 * const params = new Map([
 *   ["base_model.model.lm_head.lora_A.weight", { shape: [1, 8], data: new Float32Array(8).fill(1) }],
 *   ["base_model.model.lm_head.lora_B.weight", { shape: [259, 1], data: new Float32Array(259).fill(1) }],
 * ]);
 * const r = await mergeLora(`${root}/base`, { rank: 1, alpha: 2, params }, `${root}/merged`);
 * assert.equal(r.untiedHead, true);
 * const merged = await loadModelFolder(`${root}/merged`);
 * assert.equal(merged.config.tieWordEmbeddings, false);
 * assert.equal(tensorF32(merged.tensors.get("lm_head.weight")!)[0], 2); // 0 + (2/1)·1·1
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */

import { parseLlamaConfig } from "./config.ts";
import {
  readSafetensorsFile,
  type TensorToWrite,
  writeSafetensors,
} from "./safetensors.ts";
import { type HalfBits, halfToF32, narrowToHalf } from "../kernels/half.ts";

/** Thrown when a merge cannot be done (nothing is left at the output). */
export class MergeError extends Error {
  /**
   * A merge failure.
   *
   * @param message what was wrong, naming the folder, file or tensor
   */
  constructor(message: string) {
    super(message);
    this.name = "MergeError";
  }
}

/** A LoRA adapter to merge: its scale and its factors, by PEFT name. */
export interface MergeAdapter {
  /** Rank r. */
  rank: number;
  /** Scale numerator: the update is (alpha / r) · B·A. */
  alpha: number;
  /** `base_model.model.<module>.lora_A.weight` [r, in] and `lora_B` [out, r]. */
  params: Map<string, { shape: number[]; data: Float32Array }>;
}

/** Options of {@linkcode mergeLora}. */
export interface MergeOptions {
  /** Largest weight file; past it the weights are sharded. @default {5e9} */
  maxShardBytes?: number;
}

/** What {@linkcode mergeLora} wrote. */
export interface MergeResult {
  /** The folder written. */
  dir: string;
  /** The weight files, in order. */
  files: string[];
  /** The weights changed (HF names). */
  merged: string[];
  /** Whether a tied head was untied (an adapter on `lm_head` of a tied model). */
  untiedHead: boolean;
}

/** Files copied from the base folder when present. */
export const MERGE_COPIED_FILES: readonly string[] = [
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "tokenizer.model",
  "vocab.json",
  "merges.txt",
  "chat_template.jinja",
  "chat_template.json",
];

const FACTOR = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/;

type Weight = { shape: number[]; data: Float32Array | HalfBits };

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The base's weight files: the index's shards, else every `*.safetensors`. */
async function weightFiles(dir: string): Promise<string[]> {
  const index = `${dir}/model.safetensors.index.json`;
  if (await exists(index)) {
    const map = JSON.parse(await Deno.readTextFile(index))?.weight_map;
    if (typeof map !== "object" || map === null) {
      throw new MergeError(`${index} has no weight_map`);
    }
    return [...new Set(Object.values(map) as string[])].sort();
  }
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".safetensors")) files.push(e.name);
  }
  if (files.length === 0) throw new MergeError(`${dir} has no *.safetensors`);
  return files.sort();
}

/** (alpha/r) · B·A as float64 [out, in]. */
function update(
  a: { shape: number[]; data: Float32Array },
  b: { shape: number[]; data: Float32Array },
  scale: number,
): Float64Array {
  const [r, n] = a.shape, m = b.shape[0];
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const row = out.subarray(i * n, (i + 1) * n);
    for (let k = 0; k < r; k++) {
      const bik = b.data[i * r + k] * scale;
      if (bik === 0) continue;
      const ak = a.data.subarray(k * n, (k + 1) * n);
      for (let j = 0; j < n; j++) row[j] += bik * ak[j];
    }
  }
  return out;
}

/** `w + delta`, rounded to float32, then to `w`'s 16-bit format if it has one. */
function applyUpdate(w: Weight, delta: Float64Array, name: string): Weight {
  const n = w.shape.reduce((x, d) => x * d, 1);
  if (delta.length !== n) {
    throw new MergeError(
      `the update of ${name} has ${delta.length} elements, the weight [${w.shape}]`,
    );
  }
  const base = w.data instanceof Float32Array ? w.data : halfToF32(w.data);
  const sum = new Float32Array(n);
  for (let i = 0; i < n; i++) sum[i] = base[i] + delta[i];
  return {
    shape: w.shape,
    data: w.data instanceof Float32Array
      ? sum
      : narrowToHalf(sum, w.data.format),
  };
}

function byteSize(w: Weight): number {
  return w.data instanceof Float32Array
    ? w.data.byteLength
    : w.data.bits.byteLength;
}

/**
 * Merge `adapter` into the model folder `baseDir`, writing a new folder
 * `outDir` (whole or not at all: it is written beside and renamed).
 *
 * @throws {MergeError} when `outDir` exists, an adapted weight is missing
 *   from the base or has another shape, or a factor has no partner
 */
export async function mergeLora(
  baseDir: string,
  adapter: MergeAdapter,
  outDir: string,
  opts: MergeOptions = {},
): Promise<MergeResult> {
  const maxShard = opts.maxShardBytes ?? 5e9;
  if (await exists(outDir)) throw new MergeError(`${outDir} exists`);
  const rawConfig = JSON.parse(
    await Deno.readTextFile(`${baseDir}/config.json`),
  );
  const cfg = parseLlamaConfig(rawConfig);
  // module path → its factors
  const mods = new Map<string, { a?: string; b?: string }>();
  for (const key of adapter.params.keys()) {
    const m = FACTOR.exec(key);
    if (!m) throw new MergeError(`adapter tensor ${key} is no LoRA factor`);
    const e = mods.get(m[1]) ?? {};
    e[m[2] === "A" ? "a" : "b"] = key;
    mods.set(m[1], e);
  }
  const scale = adapter.alpha / adapter.rank;
  const pending = new Map<string, Float64Array>();
  for (const [path, { a, b }] of mods) {
    if (!a || !b) {
      throw new MergeError(`adapter has lora_${a ? "A" : "B"} of ${path} only`);
    }
    pending.set(
      `${path}.weight`,
      update(adapter.params.get(a)!, adapter.params.get(b)!, scale),
    );
  }
  const untiedHead = cfg.tieWordEmbeddings && pending.has("lm_head.weight");

  const parent = outDir.includes("/")
    ? outDir.slice(0, outDir.lastIndexOf("/")) || "/"
    : ".";
  await Deno.mkdir(parent, { recursive: true });
  const tmp = `${outDir}.tmp-${crypto.randomUUID()}`;
  await Deno.mkdir(tmp);
  try {
    const parts: { file: string; names: string[]; bytes: number }[] = [];
    let shard = new Map<string, TensorToWrite>();
    let shardBytes = 0;
    const flush = async () => {
      if (shard.size === 0) return;
      const file = `part-${parts.length}.safetensors`;
      await Deno.writeFile(
        `${tmp}/${file}`,
        writeSafetensors(shard, { format: "pt" }),
      );
      parts.push({ file, names: [...shard.keys()], bytes: shardBytes });
      shard = new Map();
      shardBytes = 0;
    };
    const put = async (name: string, w: Weight) => {
      const size = byteSize(w);
      if (shardBytes > 0 && shardBytes + size > maxShard) await flush();
      shard.set(name, w);
      shardBytes += size;
    };
    const merged: string[] = [];
    for (const file of await weightFiles(baseDir)) {
      const contents = await readSafetensorsFile(`${baseDir}/${file}`, {
        keepHalf: true,
      });
      for (const [name, t] of contents.tensors) {
        if (t.data instanceof Int32Array) {
          await put(name, t as TensorToWrite as Weight);
          continue;
        }
        const w = { shape: t.shape, data: t.data } as Weight;
        const delta = pending.get(name);
        if (delta) {
          await put(name, applyUpdate(w, delta, name));
          pending.delete(name);
          merged.push(name);
        } else await put(name, w);
        if (untiedHead && name === "model.embed_tokens.weight") {
          await put(
            "lm_head.weight",
            applyUpdate(w, pending.get("lm_head.weight")!, "lm_head.weight"),
          );
          pending.delete("lm_head.weight");
          merged.push("lm_head.weight");
        }
      }
    }
    await flush();
    if (pending.size > 0) {
      throw new MergeError(
        `the base in ${baseDir} has no weight ${[...pending.keys()][0]}`,
      );
    }
    const files: string[] = [];
    if (parts.length === 1) {
      await Deno.rename(`${tmp}/${parts[0].file}`, `${tmp}/model.safetensors`);
      files.push("model.safetensors");
    } else {
      const n = String(parts.length).padStart(5, "0");
      const weightMap: Record<string, string> = {};
      for (let i = 0; i < parts.length; i++) {
        const file = `model-${
          String(i + 1).padStart(5, "0")
        }-of-${n}.safetensors`;
        await Deno.rename(`${tmp}/${parts[i].file}`, `${tmp}/${file}`);
        for (const name of parts[i].names) weightMap[name] = file;
        files.push(file);
      }
      const sorted = Object.fromEntries(
        Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]),
      );
      await Deno.writeTextFile(
        `${tmp}/model.safetensors.index.json`,
        JSON.stringify(
          {
            metadata: {
              "total_size": parts.reduce((s, p) => s + p.bytes, 0),
            },
            "weight_map": sorted,
          },
          null,
          2,
        ) + "\n",
      );
    }
    const outConfig = untiedHead
      ? { ...rawConfig, "tie_word_embeddings": false }
      : rawConfig;
    await Deno.writeTextFile(
      `${tmp}/config.json`,
      JSON.stringify(outConfig, null, 2) + "\n",
    );
    for (const f of MERGE_COPIED_FILES) {
      if (await exists(`${baseDir}/${f}`)) {
        await Deno.copyFile(`${baseDir}/${f}`, `${tmp}/${f}`);
      }
    }
    if (await exists(outDir)) throw new MergeError(`${outDir} exists`);
    await Deno.rename(tmp, outDir);
    return { dir: outDir, files, merged: merged.sort(), untiedHead };
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
