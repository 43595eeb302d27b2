/**
 * Any Hugging Face `tokenizer.json` (BPE, WordPiece, Unigram, with their
 * normalizers, pre-tokenizers and decoders) through `@huggingface/tokenizers`,
 * the pure-JS port of the `tokenizers` library, behind Bios's `Tokenizer`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HfTokenizer } from "./hf_tokenizer.ts";
 * const tok = new HfTokenizer({
 *   model: { type: "BPE", vocab: { "a": 0, "b": 1, "ab": 2 }, merges: ["a b"] },
 *   added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null,
 * });
 * assert.deepEqual(tok.encode("abab"), [2, 2]);
 * ```
 *
 * @module
 */

import { Tokenizer as HfCoreTokenizer } from "@huggingface/tokenizers";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.ts";
import { TokenIdError } from "./byte_tokenizer.ts";

/** Thrown when a `tokenizer.json` cannot be loaded. */
export class TokenizerLoadError extends Error {
  /** @param message what was wrong, naming the file or field */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TokenizerLoadError";
  }
}

/** Where the special ids come from when `tokenizer_config.json` does not say. */
export interface HfTokenizerOptions {
  /** Display name (e.g. the folder). */
  name?: string;
  /** BOS id, e.g. `bos_token_id` from `config.json`. */
  bosTokenId?: number;
  /** EOS id, e.g. the first `eos_token_id` from `config.json`. */
  eosTokenId?: number;
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (
    typeof v === "object" && v !== null &&
    typeof (v as { content?: unknown }).content === "string"
  ) {
    return (v as { content: string }).content;
  }
  return undefined;
}

/**
 * A `Tokenizer` backed by `@huggingface/tokenizers`. Special ids come from
 * `tokenizer_config.json`'s `bos_token` / `eos_token` when given, else from
 * `options`.
 */
export class HfTokenizer implements Tokenizer {
  /** One more than the largest id in the vocabulary (added tokens included). */
  readonly vocabSize: number;
  /** BOS id, when known. */
  readonly bosTokenId?: number;
  /** EOS id, when known. */
  readonly eosTokenId?: number;
  /** Display name. */
  readonly name: string;
  /** The chat template of `tokenizer_config.json`, if any. */
  readonly chatTemplate?: string;
  /** The BOS token's text, if any. */
  readonly bosToken?: string;
  /** The EOS token's text, if any. */
  readonly eosToken?: string;
  readonly #inner: HfCoreTokenizer;
  readonly #json: unknown;
  readonly #config: Record<string, unknown> | undefined;

  /**
   * @param tokenizerJson the parsed `tokenizer.json`
   * @param tokenizerConfig the parsed `tokenizer_config.json`, if any
   * @param options name and fallback special ids
   * @throws {TokenizerLoadError} if the library cannot build it
   */
  constructor(
    tokenizerJson: unknown,
    tokenizerConfig?: Record<string, unknown>,
    options: HfTokenizerOptions = {},
  ) {
    if (typeof tokenizerJson !== "object" || tokenizerJson === null) {
      throw new TokenizerLoadError("tokenizer.json must be a JSON object");
    }
    // The library defaults clean_up_tokenization_spaces to true, which rewrites " ." as
    // "."; transformers' fast tokenizers default it to false.
    const config = {
      "clean_up_tokenization_spaces": false,
      ...tokenizerConfig,
    };
    try {
      this.#inner = new HfCoreTokenizer(tokenizerJson, config);
    } catch (e) {
      throw new TokenizerLoadError(
        `tokenizer.json could not be loaded: ${(e as Error).message}`,
        { cause: e },
      );
    }
    this.#json = tokenizerJson;
    this.#config = tokenizerConfig;
    this.name = options.name ?? "hf-tokenizer";
    let maxId = -1;
    for (const id of this.#inner.get_vocab(true).values()) {
      maxId = Math.max(maxId, id);
    }
    this.vocabSize = maxId + 1;
    const idOf = (v: unknown): number | undefined => {
      const content = tokenContent(v);
      return content === undefined
        ? undefined
        : this.#inner.token_to_id(content);
    };
    this.bosTokenId = idOf(tokenizerConfig?.bos_token) ?? options.bosTokenId;
    this.eosTokenId = idOf(tokenizerConfig?.eos_token) ?? options.eosTokenId;
    const template = tokenizerConfig?.chat_template;
    if (typeof template === "string") this.chatTemplate = template;
    this.bosToken = tokenContent(tokenizerConfig?.bos_token);
    this.eosToken = tokenContent(tokenizerConfig?.eos_token);
  }

  /**
   * Encodes without the tokenizer's own post-processor; `addBos` prepends
   * `bosTokenId` (default false).
   *
   * @param text any string
   * @param opts options
   * @returns token ids
   * @throws {TokenIdError} if `addBos` is set and the tokenizer has no BOS token
   */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.#inner.encode(text, { add_special_tokens: false }).ids;
    if (!opts.addBos) return ids;
    if (this.bosTokenId === undefined) {
      throw new TokenIdError(
        `tokenizer ${this.name} has no BOS token, so addBos cannot be honoured`,
      );
    }
    return [this.bosTokenId, ...ids];
  }

  /**
   * @param ids token ids in [0, vocabSize)
   * @param opts `skipSpecial` drops special tokens (default true)
   * @returns the text
   * @throws {TokenIdError} for an id outside the vocabulary
   */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new TokenIdError(
          `token id at position ${i} must be an integer in [0, ${
            this.vocabSize - 1
          }]: got ${id}`,
        );
      }
    });
    return this.#inner.decode([...ids], {
      skip_special_tokens: opts.skipSpecial ?? true,
    });
  }

  /** @returns `tokenizer.json` (and `tokenizer_config.json` when one was given) as text */
  toFiles(): Record<string, string> {
    const files: Record<string, string> = {
      "tokenizer.json": JSON.stringify(this.#json),
    };
    if (this.#config) {
      files["tokenizer_config.json"] = JSON.stringify(this.#config, null, 2) +
        "\n";
    }
    return files;
  }
}
