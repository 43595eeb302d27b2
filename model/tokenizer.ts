/**
 * The `Tokenizer` interface and loading one from a model folder: the built-in
 * byte tokenizer when `tokenizer.json` is Bios's own, any other through
 * `@huggingface/tokenizers`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tokenizerFromFiles } from "./tokenizer.ts";
 * import { ByteTokenizer } from "./byte_tokenizer.ts";
 * const tok = tokenizerFromFiles(new ByteTokenizer().toFiles());
 * assert.equal(tok.name, "bios-byte");
 * assert.equal(tok.decode(tok.encode("hi")), "hi");
 * ```
 *
 * @module
 */

import { ByteTokenizer, isByteTokenizerJson } from "./byte_tokenizer.ts";
import { HfTokenizer, TokenizerLoadError } from "./hf_tokenizer.ts";

export { ByteTokenizer, TokenIdError } from "./byte_tokenizer.ts";
export { HfTokenizer, TokenizerLoadError } from "./hf_tokenizer.ts";

export type {
  DecodeOptions,
  EncodeOptions,
  Tokenizer,
  TokenizerHints,
} from "../protocol/types/tokenizer.ts";
import type { Tokenizer, TokenizerHints } from "../protocol/types/tokenizer.ts";

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerLoadError(
      `${file} is not valid JSON: ${(e as Error).message}`,
    );
  }
}

/**
 * Builds a tokenizer from file contents (name → text): `tokenizer.json` is
 * required, `tokenizer_config.json` optional.
 *
 * @param files the files, as from `Tokenizer.toFiles()`
 * @param hints name and special ids to fall back on
 * @returns a `ByteTokenizer` for Bios's own `tokenizer.json`, else an `HfTokenizer`
 * @throws {TokenizerLoadError} if `tokenizer.json` is missing, not JSON, or not loadable
 */
export function tokenizerFromFiles(
  files: Record<string, string>,
  hints: TokenizerHints = {},
): Tokenizer {
  const text = files["tokenizer.json"];
  if (text === undefined) {
    throw new TokenizerLoadError("tokenizer.json is missing");
  }
  const json = parseJson(text, "tokenizer.json");
  if (isByteTokenizerJson(json)) return new ByteTokenizer();
  const cfgText = files["tokenizer_config.json"];
  const cfg = cfgText === undefined
    ? undefined
    : parseJson(cfgText, "tokenizer_config.json");
  if (
    cfg !== undefined &&
    (typeof cfg !== "object" || cfg === null || Array.isArray(cfg))
  ) {
    throw new TokenizerLoadError("tokenizer_config.json must be a JSON object");
  }
  return new HfTokenizer(
    json,
    cfg as Record<string, unknown> | undefined,
    hints,
  );
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * Loads the tokenizer of a model folder: `tokenizer.json`, plus
 * `tokenizer_config.json` and `config.json`'s `bos_token_id` / `eos_token_id`
 * when present.
 *
 * @param dir the model folder
 * @returns the tokenizer, named after the folder
 * @throws {TokenizerLoadError} naming the folder when `tokenizer.json` is missing or unusable
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const files: Record<string, string> = {};
  for (const name of ["tokenizer.json", "tokenizer_config.json"]) {
    const text = await readOptional(`${dir}/${name}`);
    if (text !== undefined) files[name] = text;
  }
  if (files["tokenizer.json"] === undefined) {
    throw new TokenizerLoadError(`${dir}/tokenizer.json does not exist`);
  }
  const hints: TokenizerHints = {
    name: dir.split("/").filter((s) => s !== "").pop() ?? dir,
  };
  const configText = await readOptional(`${dir}/config.json`);
  if (configText !== undefined) {
    const config = parseJson(configText, `${dir}/config.json`) as Record<
      string,
      unknown
    >;
    const eos = Array.isArray(config?.eos_token_id)
      ? config.eos_token_id[0]
      : config?.eos_token_id;
    if (typeof config?.bos_token_id === "number") {
      hints.bosTokenId = config.bos_token_id;
    }
    if (typeof eos === "number") hints.eosTokenId = eos;
  }
  try {
    return tokenizerFromFiles(files, hints);
  } catch (e) {
    if (e instanceof TokenizerLoadError) {
      throw new TokenizerLoadError(`${dir}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}
