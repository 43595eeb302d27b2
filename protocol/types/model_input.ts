/**
 * `ModelInput`: the token sequence a model reads, as a list of chunks.
 *
 * Only text chunks (`encoded_text`) exist in Bios; the anchor's image and
 * audio chunks are refused by the schema with a message saying so.
 *
 * @module
 */

import { z } from "zod";
import { InvalidArgumentError } from "../../runtime/errors.ts";
import {
  firstBad,
  isTokenId,
  TOKEN_ID_RULE,
  TokenIdsSchema,
} from "./checks.ts";

/** Schema of one chunk of already-tokenized text. */
export const EncodedTextChunkSchema = z.strictObject({
  type: z.literal("encoded_text", {
    error: 'must be "encoded_text" (only text chunks are supported)',
  }),
  tokens: TokenIdsSchema,
});

/** One chunk of already-tokenized text. */
export interface EncodedTextChunk {
  /** Always `"encoded_text"`. */
  type: "encoded_text";
  /** Token ids, each an integer in [0, 2^31 - 1]. */
  tokens: number[] | Int32Array;
}

/** Schema of a model input; it may be empty (requests that need tokens say so). */
export const ModelInputSchema = z.strictObject({
  chunks: z.array(EncodedTextChunkSchema, {
    error: "must be an array of chunks",
  }),
});

/** A model input: `{ chunks: [{ type: "encoded_text", tokens: [...] }] }`. */
export interface ModelInput {
  /** The chunks, read in order. */
  chunks: EncodedTextChunk[];
}

/** Number of tokens in a model input (the sum over its chunks). */
function length(mi: ModelInput): number {
  let n = 0;
  for (const c of mi.chunks) n += c.tokens.length;
  return n;
}

/** Schema of a model input that holds at least one token (a datum, a prompt). */
export const NonEmptyModelInputSchema = ModelInputSchema.refine(
  (mi) => length(mi) >= 1,
  { error: "must hold at least 1 token", abort: true },
);

function checkIds(ids: ArrayLike<number>, field: string): void {
  const i = firstBad(ids, isTokenId);
  if (i >= 0) {
    throw new InvalidArgumentError(
      `${field}[${i}]`,
      `${field}[${i}] ${TOKEN_ID_RULE}: got ${String(ids[i])}`,
    );
  }
}

/** A model input holding `ids` as one text chunk. Throws on a bad token id. */
function fromInts(ids: ArrayLike<number> | Iterable<number>): ModelInput {
  const tokens = Array.from(ids as ArrayLike<number>);
  checkIds(tokens, "tokens");
  return { chunks: [{ type: "encoded_text", tokens }] };
}

/** A model input with no chunks. */
function empty(): ModelInput {
  return { chunks: [] };
}

/** All token ids of a model input, in order, as a plain array. */
function toInts(mi: ModelInput): number[] {
  const out: number[] = [];
  for (const c of mi.chunks) for (const t of c.tokens) out.push(t);
  return out;
}

/** All token ids of a model input as one `Int32Array`. */
function toInt32Array(mi: ModelInput): Int32Array {
  const out = new Int32Array(length(mi));
  let at = 0;
  for (const c of mi.chunks) {
    out.set(c.tokens, at);
    at += c.tokens.length;
  }
  return out;
}

/** A new model input with `chunk` after the existing chunks. */
function append(mi: ModelInput, chunk: EncodedTextChunk): ModelInput {
  return { chunks: [...mi.chunks, chunk] };
}

/**
 * A new model input with one more token: it extends the last text chunk, or
 * starts one when there is none. Throws on a bad token id.
 */
function appendInt(mi: ModelInput, token: number): ModelInput {
  checkIds([token], "token");
  const last = mi.chunks.at(-1);
  if (last === undefined) return fromInts([token]);
  const tokens = [...Array.from(last.tokens), token];
  return { chunks: [...mi.chunks.slice(0, -1), { type: last.type, tokens }] };
}

/**
 * Helpers for model inputs. Every helper returns a new plain object (nothing
 * is mutated), so a model input is wire-safe as it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ModelInput } from "./model_input.ts";
 * let mi = ModelInput.fromInts([1, 2]);
 * mi = ModelInput.appendInt(mi, 3);
 * assert.deepEqual(ModelInput.toInts(mi), [1, 2, 3]);
 * assert.equal(ModelInput.length(mi), 3);
 * ```
 */
export const ModelInput: {
  /** A model input holding `ids` as one text chunk. */
  fromInts(ids: ArrayLike<number> | Iterable<number>): ModelInput;
  /** A model input with no chunks. */
  empty(): ModelInput;
  /** All token ids, in order. */
  toInts(mi: ModelInput): number[];
  /** All token ids as one `Int32Array`. */
  toInt32Array(mi: ModelInput): Int32Array;
  /** Number of tokens. */
  length(mi: ModelInput): number;
  /** A new model input with `chunk` appended. */
  append(mi: ModelInput, chunk: EncodedTextChunk): ModelInput;
  /** A new model input with one more token. */
  appendInt(mi: ModelInput, token: number): ModelInput;
} = Object.freeze({
  fromInts,
  empty,
  toInts,
  toInt32Array,
  length,
  append,
  appendInt,
});

/**
 * Throws {@link InvalidArgumentError} naming `field[i]` for the first token
 * id at or above `vocabSize` (or not a token id at all). The trainer and the
 * sampler call this once they know the model; `i` indexes `tokens` as given
 * (for a model input, its flattened sequence).
 *
 * @example
 * ```ts
 * import { checkTokenRange } from "./model_input.ts";
 * checkTokenRange([0, 5, 9], 10, "prompt"); // fine: all below 10
 * ```
 */
export function checkTokenRange(
  tokens: ArrayLike<number>,
  vocabSize: number,
  field: string,
): void {
  const i = firstBad(tokens, (t) => isTokenId(t) && t < vocabSize);
  if (i >= 0) {
    throw new InvalidArgumentError(
      `${field}[${i}]`,
      `${field}[${i}] must be a token id in [0, ${vocabSize - 1}] ` +
        `(the model's vocabulary has ${vocabSize} tokens): got ${
          String(tokens[i])
        }`,
    );
  }
}
