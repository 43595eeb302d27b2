/**
 * The built-in byte-level tokenizer: ids 0–255 are the UTF-8 bytes of the text,
 * 256 is `<|bos|>`, 257 `<|eos|>`, 258 `<|pad|>` (vocabulary 259).
 *
 * It is saved as a Hugging Face `tokenizer.json` that HF tools read as the same
 * tokenizer: a BPE model with no merges whose vocabulary is the 256 bytes under
 * GPT-2's byte-to-unicode map (id = byte value), a ByteLevel pre-tokenizer and
 * decoder with `use_regex` and `add_prefix_space` off, and the three specials as
 * added tokens. One difference: Bios never turns literal text such as
 * `"<|eos|>"` into a special id (it stays bytes), while HF tools match added
 * tokens in the text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ByteTokenizer } from "./byte_tokenizer.ts";
 * const tok = new ByteTokenizer();
 * assert.deepEqual(tok.encode("hé", { addBos: true }), [256, 104, 195, 169]);
 * assert.equal(tok.decode([256, 104, 195, 169, 257]), "hé");
 * ```
 *
 * @module
 */

import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.ts";

/** Thrown for a token id the tokenizer does not have. */
export class TokenIdError extends Error {
  /** @param message which id, and the valid range */
  constructor(message: string) {
    super(message);
    this.name = "TokenIdError";
  }
}

/** Id of `<|bos|>`. */
export const BYTE_BOS_ID = 256;
/** Id of `<|eos|>`. */
export const BYTE_EOS_ID = 257;
/** Id of `<|pad|>`. */
export const BYTE_PAD_ID = 258;
/** Vocabulary size of the byte tokenizer. */
export const BYTE_VOCAB_SIZE = 259;

const SPECIALS: [number, string][] = [[BYTE_BOS_ID, "<|bos|>"], [
  BYTE_EOS_ID,
  "<|eos|>",
], [BYTE_PAD_ID, "<|pad|>"]];

/**
 * GPT-2's byte → printable-unicode map: printable Latin-1 bytes map to
 * themselves, the other 68 bytes to U+0100 onwards, in byte order.
 */
function bytesToUnicode(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) ||
    (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    out.push(String.fromCodePoint(printable(b) ? b : 256 + n++));
  }
  return out;
}

const BYTE_CHARS = bytesToUnicode();

/**
 * The Hugging Face `tokenizer.json` object of the byte tokenizer.
 *
 * @returns a JSON-ready object with a fixed key order
 */
export function byteTokenizerJson(): Record<string, unknown> {
  const byteLevel = {
    type: "ByteLevel",
    "add_prefix_space": false,
    "trim_offsets": false,
    "use_regex": false,
  };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map(([id, content]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(BYTE_CHARS.map((c, b) => [c, b])),
      merges: [],
    },
  };
}

/**
 * The companion `tokenizer_config.json`, naming the specials for `transformers`
 * and turning off space clean-up so decoding stays lossless.
 *
 * @returns a JSON-ready object
 */
export function byteTokenizerConfigJson(): Record<string, unknown> {
  return {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: "<|bos|>",
    eos_token: "<|eos|>",
    pad_token: "<|pad|>",
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
  };
}

/**
 * Whether a parsed `tokenizer.json` is the byte tokenizer: a merge-free BPE over
 * exactly the 256 byte characters (id = byte) with the three Bios specials.
 *
 * @param json a parsed `tokenizer.json`
 * @returns true when `ByteTokenizer` reproduces it exactly
 */
export function isByteTokenizerJson(json: unknown): boolean {
  if (typeof json !== "object" || json === null) return false;
  const { model, added_tokens: added, pre_tokenizer: pre, normalizer } =
    json as Record<string, unknown>;
  if (normalizer !== null && normalizer !== undefined) return false;
  if (
    typeof pre !== "object" || pre === null ||
    (pre as Record<string, unknown>).type !== "ByteLevel"
  ) return false;
  if ((pre as Record<string, unknown>).add_prefix_space === true) return false;
  if (typeof model !== "object" || model === null) return false;
  const m = model as Record<string, unknown>;
  if (m.type !== "BPE" || !Array.isArray(m.merges) || m.merges.length !== 0) {
    return false;
  }
  const vocab = m.vocab as Record<string, unknown> | undefined;
  if (
    typeof vocab !== "object" || vocab === null ||
    Object.keys(vocab).length !== 256
  ) return false;
  if (!BYTE_CHARS.every((c, b) => vocab[c] === b)) return false;
  if (!Array.isArray(added) || added.length !== SPECIALS.length) return false;
  return SPECIALS.every(([id, content]) =>
    added.some((t) =>
      typeof t === "object" && t !== null && t.id === id &&
      t.content === content
    )
  );
}

/**
 * The byte-level tokenizer (see the module doc).
 */
export class ByteTokenizer implements Tokenizer {
  /** Always 259. */
  readonly vocabSize: number = BYTE_VOCAB_SIZE;
  /** 256, `<|bos|>`. */
  readonly bosTokenId: number = BYTE_BOS_ID;
  /** 257, `<|eos|>`. */
  readonly eosTokenId: number = BYTE_EOS_ID;
  /** 258, `<|pad|>`. */
  readonly padTokenId: number = BYTE_PAD_ID;
  /** `"bios-byte"`. */
  readonly name: string = "bios-byte";

  /**
   * @param text any string
   * @param opts `addBos` prepends 256 (default false)
   * @returns the UTF-8 bytes as ids
   */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const bytes = new TextEncoder().encode(text);
    const ids = opts.addBos ? [BYTE_BOS_ID] : [];
    for (const b of bytes) ids.push(b);
    return ids;
  }

  /**
   * @param ids token ids in [0, 259)
   * @param opts `skipSpecial` drops 256–258 (default true); kept, they print as `<|bos|>` etc.
   * @returns the text; invalid UTF-8 becomes U+FFFD
   * @throws {TokenIdError} for an id outside [0, 259)
   */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const skip = opts.skipSpecial ?? true;
    const decoder = new TextDecoder("utf-8", { fatal: false });
    let text = "";
    let run: number[] = [];
    const flush = () => {
      if (run.length > 0) text += decoder.decode(new Uint8Array(run));
      run = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= BYTE_VOCAB_SIZE) {
        throw new TokenIdError(
          `token id at position ${i} must be an integer in [0, ${
            BYTE_VOCAB_SIZE - 1
          }]: got ${id}`,
        );
      }
      if (id < 256) {
        run.push(id);
        continue;
      }
      flush();
      if (!skip) text += SPECIALS.find(([s]) => s === id)![1];
    }
    flush();
    return text;
  }

  /** @returns `tokenizer.json` and `tokenizer_config.json` as text */
  toFiles(): Record<string, string> {
    return {
      "tokenizer.json": JSON.stringify(byteTokenizerJson(), null, 2) + "\n",
      "tokenizer_config.json":
        JSON.stringify(byteTokenizerConfigJson(), null, 2) + "\n",
    };
  }
}
