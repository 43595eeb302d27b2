/**
 * `mergeAdapter` for scripts that import Bios: the merge itself
 * (`actors/merge_adapter.ts`, `model/merge.ts`) loads when first called, so
 * importing `mod.ts` still loads no actor or model module.
 *
 * @module
 */

/** Options of {@linkcode mergeAdapter}. */
export interface MergeAdapterOptions {
  /**
   * The adapter: `bios://<run>/<weights|sampler_weights>/<name>`, or a PEFT
   * adapter folder (a path, relative to the working folder or absolute, or
   * a `file:///` URL).
   */
  adapter: string;
  /** The folder to write; it must not exist. */
  out: string;
  /**
   * The base model: a model name (the catalog, `BIOS_MODELS`) or a model
   * folder. Default: the checkpoint's base model, or the model a PEFT
   * adapter's `base_model_name_or_path` names (a served name or a folder).
   */
  base?: string;
  /** Where `bios://` checkpoints live. @default {`$BIOS_HOME/runs`} */
  checkpointRoot?: string;
  /** Largest weight file before sharding. @default {5e9} */
  maxShardBytes?: number;
}

/** What {@linkcode mergeAdapter} wrote. */
export interface MergeAdapterResult {
  /** The folder written. */
  dir: string;
  /** Its weight files, in order (`model.safetensors`, or the shards). */
  files: string[];
  /** The weights the adapter changed (Hugging Face names). */
  merged: string[];
  /** Whether a tied head was untied (an adapter on `lm_head` of a tied model). */
  untiedHead: boolean;
}

/**
 * Merge an adapter into its base model and write the result as a full
 * Hugging Face model folder, which transformers (or any tool) loads as a
 * plain model: `W' = W + (alpha/r)·B·A` in float32, written in the base's
 * dtype (F16 and BF16 rounded once); other weights copied bit for bit;
 * sharded with `model.safetensors.index.json` past `maxShardBytes`;
 * generation and tokenizer files copied. On a tied model whose `lm_head`
 * was adapted, the folder gets its own `lm_head.weight` and
 * `tie_word_embeddings: false`, and the embedding stays the base's.
 *
 * @example
 * ```ts ignore
 * import * as bios from "@bios/bios";
 * const r = await bios.mergeAdapter({
 *   adapter: "bios://run-1a2b/weights/epoch_3",
 *   out: "./merged-model",
 * });
 * console.log(r.files, r.untiedHead);
 * ```
 *
 * @throws {NotFoundError} for an unknown checkpoint, folder or base model
 * @throws {InvalidArgumentError} for an adapter that does not fit the base
 *   or uses options Bios does not implement
 * @throws an error named `MergeError` when `out` exists
 */
export async function mergeAdapter(
  opts: MergeAdapterOptions,
): Promise<MergeAdapterResult> {
  const m = await import("../actors/merge_adapter.ts");
  return await m.mergeAdapter(opts);
}
