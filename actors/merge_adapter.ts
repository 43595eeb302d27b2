/**
 * `mergeAdapter`: a Bios checkpoint or a PEFT adapter folder merged into its
 * base model, written as a full Hugging Face folder (see `model/merge.ts`
 * for what is written). This is the library side of `deno task merge`.
 *
 * @module
 */
import { InvalidArgumentError, NotFoundError } from "../runtime/errors.ts";
import { biosHome } from "../runtime/home.ts";
import {
  CHECKPOINT_SCHEME,
  parseCheckpointPath,
} from "../protocol/types/checkpoint_path.ts";
import { localAdapterDir } from "../protocol/types/adapter_path.ts";
import { parseLlamaConfig } from "../model/config.ts";
import { resolveModel } from "../model/catalog.ts";
import {
  type MergeAdapter,
  mergeLora,
  type MergeResult,
} from "../model/merge.ts";
import { checkpointDir, readCheckpoint } from "./checkpoint_files.ts";
import { checkFitsModel } from "./checkpoint_verify.ts";
import { checkPeftFits, readPeftAdapter } from "./peft_adapter.ts";

/** Options of {@linkcode mergeAdapter} (`client/merge.ts` documents each). */
export interface MergeAdapterOptions {
  /** A `bios://` checkpoint path or a PEFT adapter folder. */
  adapter: string;
  /** The folder to write; it must not exist. */
  out: string;
  /** The base model's name or folder (default: the adapter's). */
  base?: string;
  /** Where `bios://` checkpoints live. @default {`$BIOS_HOME/runs`} */
  checkpointRoot?: string;
  /** Largest weight file before sharding. @default {5e9} */
  maxShardBytes?: number;
}

async function isDir(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isDirectory, () => false);
}

/** The folder of a base model given as a folder or a catalog name. */
async function baseFolder(base: string): Promise<string> {
  if (await isDir(base)) return base;
  const dir = await resolveModel(base);
  if (dir === undefined) {
    throw new NotFoundError(
      `base ${
        JSON.stringify(base)
      } is neither a model folder nor a model name the catalog knows`,
    );
  }
  return dir;
}

/**
 * Merge an adapter into its base model and write the result as a full
 * Hugging Face model folder: `W' = W + (alpha/r)·B·A` in float32, written in
 * the base's dtype; on a tied model whose `lm_head` was adapted, an untied
 * `lm_head.weight` and `tie_word_embeddings: false`.
 *
 * Scripts call it as `bios.mergeAdapter` (`client/merge.ts`, which loads
 * this module when first called).
 *
 * @throws {NotFoundError} for an unknown checkpoint, folder or base model
 * @throws {InvalidArgumentError} for an adapter that does not fit the base
 *   or uses options Bios does not implement
 * @throws {MergeError} when `out` exists
 */
export async function mergeAdapter(
  opts: MergeAdapterOptions,
): Promise<MergeResult> {
  let adapter: MergeAdapter;
  let baseDir: string;
  if (opts.adapter.startsWith(CHECKPOINT_SCHEME)) {
    const p = parseCheckpointPath(opts.adapter, "adapter");
    const root = opts.checkpointRoot ?? `${biosHome()}/runs`;
    const ck = await readCheckpoint(
      checkpointDir(root, p.runId, p.kind, p.name),
      false,
    );
    baseDir = await baseFolder(opts.base ?? ck.manifest.baseModel);
    const cfg = parseLlamaConfig(
      JSON.parse(await Deno.readTextFile(`${baseDir}/config.json`)),
    );
    checkFitsModel(ck.params, ck.manifest, cfg, opts.adapter);
    adapter = {
      rank: ck.manifest.lora.rank,
      alpha: ck.manifest.lora.alpha,
      params: ck.params,
    };
  } else {
    const dir = localAdapterDir(opts.adapter) ??
      localAdapterDir(`${Deno.cwd()}/${opts.adapter}`);
    if (dir === null) {
      throw new InvalidArgumentError(
        "adapter",
        `adapter must be a bios:// checkpoint path or an adapter folder: got ${
          JSON.stringify(opts.adapter)
        }`,
      );
    }
    const a = await readPeftAdapter(dir, opts.adapter, "adapter");
    const named = a.config.base_model_name_or_path;
    const base = opts.base ?? (typeof named === "string" ? named : undefined);
    if (base === undefined || base === "") {
      throw new InvalidArgumentError(
        "base",
        `base is required: the adapter at ${opts.adapter} names no base model`,
      );
    }
    baseDir = await baseFolder(base);
    const cfg = parseLlamaConfig(
      JSON.parse(await Deno.readTextFile(`${baseDir}/config.json`)),
    );
    checkPeftFits(a, { config: cfg }, base, opts.adapter, "adapter");
    adapter = {
      rank: a.config.r,
      alpha: a.config.lora_alpha,
      params: a.params,
    };
  }
  return await mergeLora(baseDir, adapter, opts.out, {
    maxShardBytes: opts.maxShardBytes,
  });
}
