/**
 * The `Tokenizer` interface: text ⇄ token ids, as a client gets it from
 * `TrainingClient.getTokenizer()`. It lives with the protocol so that the
 * client can name it without loading any model code; `model/tokenizer.ts`
 * builds the implementations.
 *
 * @module
 */

/** Options of `Tokenizer.encode`. */
export interface EncodeOptions {
  /** Prepend the BOS token. @default {false} */
  addBos?: boolean;
}

/** Options of `Tokenizer.decode`. */
export interface DecodeOptions {
  /** Leave special tokens (BOS, EOS, pad, …) out of the text. @default {true} */
  skipSpecial?: boolean;
}

/** Text ⇄ token ids. */
export interface Tokenizer {
  /** Encodes text to ids; literal special-token text is not turned into special ids by the byte tokenizer. */
  encode(text: string, opts?: EncodeOptions): number[];
  /** Decodes ids to text; throws a `TokenIdError` for an id outside [0, vocabSize). */
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  /** Number of ids (one more than the largest). */
  readonly vocabSize: number;
  /** Beginning-of-sequence id, when the tokenizer has one. */
  readonly bosTokenId?: number;
  /** End-of-sequence id, when the tokenizer has one. */
  readonly eosTokenId?: number;
  /** Display name, e.g. `"bios-byte"`. */
  readonly name: string;
  /**
   * The Jinja chat template of `tokenizer_config.json`, when the model has
   * one (see `bios.chat`), and the special-token texts it refers to.
   */
  readonly chatTemplate?: string;
  /** The text of the BOS token, for chat templates. */
  readonly bosToken?: string;
  /** The text of the EOS token, for chat templates. */
  readonly eosToken?: string;
  /** The files (name → text) that recreate this tokenizer in a model folder. */
  toFiles(): Record<string, string>;
}

/** Ids a model's `config.json` gives, used when `tokenizer_config.json` does not name them. */
export interface TokenizerHints {
  /** Display name. */
  name?: string;
  /** `bos_token_id` from `config.json`. */
  bosTokenId?: number;
  /** First `eos_token_id` from `config.json`. */
  eosTokenId?: number;
}
