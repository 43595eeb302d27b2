/**
 * Hugging Face model folders: `config.json`, `*.safetensors` (one file, or
 * shards listed in `model.safetensors.index.json`) and `tokenizer.json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModelFolder, writeModelFolder } from "./model_folder.ts";
 * import { llamaTensorShapes, parseLlamaConfig } from "./config.ts";
 * import { ByteTokenizer } from "./byte_tokenizer.ts";
 * const config = parseLlamaConfig({ hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1,
 *   num_attention_heads: 2, vocab_size: 259, tie_word_embeddings: true });
 * const tensors = new Map(llamaTensorShapes(config).map(([name, shape]) =>
 *   [name, { shape, data: new Float32Array(shape.reduce((a, d) => a * d, 1)) }]));
 * const root = await Deno.makeTempDir();
 * const dir = `${root}/m`;
 * assert.equal(await writeModelFolder(dir, config, tensors, new ByteTokenizer()), "written");
 * assert.equal((await loadModelFolder(dir)).config.hiddenSize, 8);
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */

import {
  type LlamaConfig,
  llamaTensorShapes,
  parseLlamaConfig,
  toHfConfig,
} from "./config.ts";
import {
  type KeptData,
  readSafetensorsFile,
  type SafeTensor,
  writeSafetensors,
} from "./safetensors.ts";
import { loadTokenizer, type Tokenizer } from "./tokenizer.ts";
import { type HalfBits, halfToF32 } from "../kernels/half.ts";

/** Thrown for a model folder that is incomplete or inconsistent. */
export class ModelFolderError extends Error {
  /** @param message what was wrong, naming the folder and file or tensor */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ModelFolderError";
  }
}

/**
 * A float tensor of a model: float32, or the 16-bit bits of an F16 or BF16
 * file (kept as they are: {@linkcode tensorF32} widens them).
 */
export interface ModelTensor {
  /** Dimensions, outermost first. */
  shape: number[];
  /** Row-major elements. */
  data: Float32Array | HalfBits;
}

/**
 * A model tensor's elements as float32 (16-bit ones widened, exactly, into a
 * new array).
 */
export function tensorF32(t: { data: Float32Array | HalfBits }): Float32Array {
  return t.data instanceof Float32Array ? t.data : halfToF32(t.data);
}

/** A loaded model folder. */
export interface ModelFolder {
  /** The parsed `config.json`. */
  config: LlamaConfig;
  /** Every float tensor by its HF name (integer tensors, if any, are left out). */
  tensors: Map<string, ModelTensor>;
  /** The folder's tokenizer. */
  tokenizer: Tokenizer;
  /** The folder it was read from. */
  dir: string;
}

/**
 * Checks that every tensor a HF Llama model needs is present with the right
 * shape (`lm_head.weight` only when embeddings are untied). Extra tensors are
 * allowed.
 *
 * @param config the config
 * @param tensors tensors by name
 * @throws {ModelFolderError} naming the first missing or misshapen tensor
 */
export function checkLlamaTensors(
  config: LlamaConfig,
  tensors: ReadonlyMap<
    string,
    { shape: readonly number[]; data: Float32Array | HalfBits }
  >,
): void {
  for (const [name, shape] of llamaTensorShapes(config)) {
    const t = tensors.get(name);
    if (t === undefined) {
      throw new ModelFolderError(
        `tensor ${name} is missing (expected shape [${shape}])`,
      );
    }
    if (
      t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])
    ) {
      throw new ModelFolderError(
        `tensor ${name} has shape [${t.shape}], expected [${shape}]`,
      );
    }
    const count = shape.reduce((a, d) => a * d, 1);
    const have = t.data instanceof Float32Array
      ? t.data.length
      : t.data.bits.length;
    if (have !== count) {
      throw new ModelFolderError(
        `tensor ${name} has ${have} elements, expected ${count}`,
      );
    }
  }
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ModelFolderError(`${path} does not exist`);
    }
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelFolderError(
      `${path} is not valid JSON: ${(e as Error).message}`,
    );
  }
}

/** The safetensors files holding the weights: the index's shards, else every `*.safetensors`. */
async function weightFiles(dir: string): Promise<string[]> {
  const indexPath = `${dir}/model.safetensors.index.json`;
  let hasIndex = true;
  try {
    await Deno.stat(indexPath);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    hasIndex = false;
  }
  if (hasIndex) {
    const index = await readJson(indexPath) as { weight_map?: unknown };
    const map = index?.weight_map;
    if (typeof map !== "object" || map === null || Array.isArray(map)) {
      throw new ModelFolderError(
        `${indexPath}: weight_map must be an object of tensor name → file`,
      );
    }
    const files = new Set<string>();
    for (const [name, file] of Object.entries(map)) {
      if (
        typeof file !== "string" || file.includes("/") || file.includes("\\") ||
        !file.endsWith(".safetensors")
      ) {
        throw new ModelFolderError(
          `${indexPath}: weight_map.${name} must be a .safetensors file name in the folder`,
        );
      }
      files.add(file);
    }
    return [...files].sort();
  }
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".safetensors")) files.push(e.name);
  }
  if (files.length === 0) {
    throw new ModelFolderError(`${dir} has no *.safetensors file`);
  }
  return files.sort();
}

/**
 * Loads a Hugging Face Llama model folder, converting every float tensor to f32.
 *
 * @param dir the folder
 * @returns config, tensors, tokenizer and the folder
 * @throws {ModelFolderError} for a missing file, a tensor in two files, or a
 *   missing or misshapen required tensor; `ConfigError`, `SafetensorsError` and
 *   `TokenizerLoadError` for a bad config, weight file or tokenizer
 */
export async function loadModelFolder(dir: string): Promise<ModelFolder> {
  const config = parseLlamaConfig(await readJson(`${dir}/config.json`));
  const tensors = new Map<string, ModelTensor>();
  const origin = new Map<string, string>();
  for (const file of await weightFiles(dir)) {
    let contents: Map<string, SafeTensor<KeptData>>;
    try {
      contents = (await readSafetensorsFile(`${dir}/${file}`, {
        keepHalf: true,
      })).tensors;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new ModelFolderError(
          `${dir}/${file} does not exist (listed in model.safetensors.index.json)`,
        );
      }
      throw e;
    }
    for (const [name, t] of contents) {
      if (origin.has(name)) {
        throw new ModelFolderError(
          `${dir}: tensor ${name} is in both ${origin.get(name)} and ${file}`,
        );
      }
      origin.set(name, file);
      if (!(t.data instanceof Int32Array)) {
        tensors.set(name, { shape: t.shape, data: t.data });
      }
    }
  }
  try {
    checkLlamaTensors(config, tensors);
  } catch (e) {
    if (e instanceof ModelFolderError) {
      throw new ModelFolderError(`${dir}: ${e.message}`, { cause: e });
    }
    throw e;
  }
  const tokenizer = await loadTokenizer(dir);
  return { config, tensors, tokenizer, dir };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Writes a model folder atomically: `config.json`, `model.safetensors` (F32,
 * or BF16/F16 for 16-bit tensors; metadata `format: pt`) and the tokenizer's files go into
 * `dir + ".tmp-<random>"`, which is then renamed to `dir`. If `dir` already
 * exists, or appears while writing (another process won the race), nothing is
 * written and the existing folder is kept.
 *
 * @param dir the folder to create (its parent is created if needed)
 * @param config the model config
 * @param tensors every tensor `llamaTensorShapes(config)` lists (extra ones are written too)
 * @param tokenizer the tokenizer
 * @returns `"written"`, or `"existed"` when `dir` was already there
 * @throws {ModelFolderError} if a required tensor is missing or misshapen
 */
export async function writeModelFolder(
  dir: string,
  config: LlamaConfig,
  tensors: ReadonlyMap<
    string,
    { shape: readonly number[]; data: Float32Array | HalfBits }
  >,
  tokenizer: Tokenizer,
): Promise<"written" | "existed"> {
  checkLlamaTensors(config, tensors);
  if (await exists(dir)) return "existed";
  const parent = dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/")) : ".";
  if (parent !== "") await Deno.mkdir(parent, { recursive: true });
  const tmp = `${dir}.tmp-${crypto.randomUUID()}`;
  await Deno.mkdir(tmp);
  try {
    await Deno.writeTextFile(
      `${tmp}/config.json`,
      JSON.stringify(toHfConfig(config), null, 2) + "\n",
    );
    await Deno.writeFile(
      `${tmp}/model.safetensors`,
      writeSafetensors(tensors, { format: "pt" }),
    );
    for (const [name, text] of Object.entries(tokenizer.toFiles())) {
      await Deno.writeTextFile(`${tmp}/${name}`, text);
    }
    if (await exists(dir)) return "existed";
    try {
      await Deno.rename(tmp, dir);
    } catch (e) {
      // Renaming onto a non-empty folder fails: someone else finished first.
      if (await exists(dir)) return "existed";
      throw e;
    }
    return "written";
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
