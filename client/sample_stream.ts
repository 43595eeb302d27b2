/**
 * A streaming sample's tokens, each exactly once and in order, whatever the
 * wire did: the sampler's progress messages are told (at most once), and a
 * request passed to another sampler of its group starts over, so a message
 * may be lost or its tokens repeated. `take` passes on only the tokens that
 * continue what was passed on; `finish` passes on the rest from the reply,
 * which holds them all. A sequence whose message was lost waits for the
 * reply.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SampleStream } from "./sample_stream.ts";
 * const got: number[] = [];
 * const s = new SampleStream((p) => got.push(...p.sequences[0].tokens));
 * s.take({ sequences: [{ from: 0, tokens: [5, 6], logprobs: [-1, -2] }] });
 * s.take({ sequences: [{ from: 0, tokens: [5, 6], logprobs: [-1, -2] }] }); // again
 * s.finish({ sequences: [{ tokens: [5, 6, 7], logprobs: [-1, -2, -3], stopReason: "length" }] });
 * assert.deepEqual(got, [5, 6, 7]);
 * ```
 *
 * @module
 */
import type { SampleProgress } from "../protocol/sample_progress.ts";
import type { SampleResponse } from "../protocol/types/responses.ts";

/** Passes a sample's tokens on to `onTokens` once each, in order. */
export class SampleStream {
  readonly #onTokens: (progress: SampleProgress) => void;
  /** Tokens passed on, per sequence. */
  readonly #have: number[] = [];
  /** Sequences that missed a message: they wait for the reply. */
  readonly #gap = new Set<number>();
  #done = false;
  #error?: { e: unknown };

  /** @param onTokens the caller's callback */
  constructor(onTokens: (progress: SampleProgress) => void) {
    this.#onTokens = onTokens;
  }

  /** A progress message from the sampler (ignored once the reply came). */
  take(p: SampleProgress): void {
    if (this.#done) return;
    this.#pass(p.sequences.map((s, b) => {
      const have = this.#have[b] ?? 0;
      if (s.from > have) this.#gap.add(b);
      if (this.#gap.has(b)) return { from: have, tokens: [], logprobs: [] };
      const skip = have - s.from;
      return {
        from: have,
        tokens: s.tokens.slice(skip),
        logprobs: s.logprobs.slice(skip),
      };
    }));
  }

  /**
   * The reply: passes on the tokens not passed on yet, and ends the stream.
   *
   * @throws what the callback threw, if it did (it is called no more after)
   */
  finish(res: Pick<SampleResponse, "sequences">): void {
    if (this.#done) return;
    this.#pass(res.sequences.map((s, b) => {
      const have = this.#have[b] ?? 0;
      return {
        from: have,
        tokens: s.tokens.slice(have),
        logprobs: s.logprobs.slice(have),
      };
    }));
    this.#done = true;
    if (this.#error) throw this.#error.e;
  }

  #pass(sequences: SampleProgress["sequences"]): void {
    if (this.#error || !sequences.some((s) => s.tokens.length > 0)) return;
    sequences.forEach((s, b) => this.#have[b] = s.from + s.tokens.length);
    try {
      this.#onTokens({ sequences });
    } catch (e) {
      this.#error = { e };
    }
  }
}
