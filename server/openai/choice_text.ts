/**
 * One choice of a streamed response, growing as its tokens come: which
 * tokens are certainly content, and their text. A token is let out once
 *
 * - the token after it is certainly content too: followed by another (so
 *   not the stop token that ended the sequence) and before the end-of-turn
 *   id the reply is cut at, if any (the last content token's piece runs to
 *   the text's end, which may hold an incomplete character), and
 * - its text ends before anything that is, or may yet become, a stop
 *   string (a stop string's start at the text's end is held back).
 *
 * What is let out is exactly a prefix of what the whole response gives:
 * token i's piece is the choice's text from token i's start to token i+1's
 * ({@linkcode pieces}), and {@linkcode ChoiceText.rest} gives the pieces
 * after it once the sequence is whole.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ByteTokenizer } from "../../model/byte_tokenizer.ts";
 * import { ChoiceText } from "./choice_text.ts";
 * const tok = new ByteTokenizer();
 * const ct = new ChoiceText(tok, ["\nQ"], undefined);
 * const ids = tok.encode("ab\nc");
 * const out = ct.add(ids, ids.map(() => -1));
 * // "\n" waits: "c" after it may yet be the stop token.
 * assert.deepEqual(out.map((t) => t.piece), ["a", "b"]);
 * ```
 *
 * @module
 */
import type { Tokenizer } from "../../protocol/types/tokenizer.ts";
import { pieces } from "./render.ts";
import { type Choice, tokenOffsets } from "./sample.ts";

/** A token let out: its piece of the text, and what a chunk's logprobs tell of it. */
export interface TextToken {
  /** Its place in the choice. */
  index: number;
  /** The text it adds (empty while a character is incomplete). */
  piece: string;
  /** Its text offset in the choice's text. */
  offset: number;
  /** Its id; absent for a last piece that belongs to no token. */
  token?: number;
  /** Its log-probability; absent with `token`. */
  logprob?: number;
}

/** One choice's tokens as they come, let out when certain (see the module doc). */
export class ChoiceText {
  readonly #tok: Tokenizer;
  readonly #stops: readonly string[];
  readonly #cutAt: number | undefined;
  readonly #tokens: number[] = [];
  readonly #logprobs: number[] = [];
  /** Where token i's text starts (as `tokenOffsets` has it). */
  readonly #offsets: number[] = [];
  /** The text of every token so far, less an incomplete last character. */
  #text = "";
  /** Tokens let out. */
  #out = 0;

  /**
   * @param tok the model's tokenizer
   * @param stops the request's stop strings (and an end of turn's text)
   * @param cutAt the end-of-turn id the reply is cut at, if any
   */
  constructor(tok: Tokenizer, stops: readonly string[], cutAt?: number) {
    this.#tok = tok;
    this.#stops = stops.filter((s) => s.length > 0);
    this.#cutAt = cutAt;
  }

  /** Append the next tokens; returns the ones now let out, in order. */
  add(tokens: readonly number[], logprobs: readonly number[]): TextToken[] {
    for (let i = 0; i < tokens.length; i++) {
      this.#tokens.push(tokens[i]);
      this.#logprobs.push(logprobs[i]);
      this.#offsets.push(this.#text.length);
      const t = this.#tok.decode(this.#tokens).replace(/\uFFFD+$/, "");
      if (t.length >= this.#text.length) this.#text = t;
    }
    const text = this.#text;
    let safe = text.length;
    for (const s of this.#stops) {
      const at = text.indexOf(s);
      if (at >= 0) safe = Math.min(safe, at);
      for (let k = Math.min(s.length - 1, text.length); k > 0; k--) {
        if (text.endsWith(s.slice(0, k))) {
          safe = Math.min(safe, text.length - k);
          break;
        }
      }
    }
    let limit = this.#tokens.length - 1;
    if (this.#cutAt !== undefined) {
      const j = this.#tokens.indexOf(this.#cutAt);
      if (j >= 0) limit = Math.min(limit, j);
    }
    const out: TextToken[] = [];
    // Token i's piece ends where token i + 1's starts only while i + 1 is
    // content too (the last content token's piece runs to the text's end).
    while (this.#out + 1 < limit && this.#offsets[this.#out + 1] <= safe) {
      const i = this.#out++;
      out.push({
        index: i,
        piece: text.slice(this.#offsets[i], this.#offsets[i + 1]),
        offset: this.#offsets[i],
        token: this.#tokens[i],
        logprob: this.#logprobs[i],
      });
    }
    return out;
  }

  /** The whole choice: the pieces not let out yet (a last piece may have no token). */
  rest(c: Choice): TextToken[] {
    const ps = pieces(this.#tok, c);
    const offsets = tokenOffsets(this.#tok, c.tokens);
    const out: TextToken[] = [];
    for (let i = this.#out; i < ps.length; i++) {
      out.push(
        i < c.tokens.length
          ? {
            index: i,
            piece: ps[i],
            offset: offsets[i],
            token: c.tokens[i],
            logprob: c.logprobs[i],
          }
          : { index: i, piece: ps[i], offset: c.text.length - ps[i].length },
      );
    }
    this.#out = ps.length;
    return out;
  }
}
