/**
 * Batched autoregressive generation with a KV cache, over a chain of stages.
 *
 * The prompt is prefilled once for all B samples; each later step feeds the
 * sampled token ids straight back as the next input, so on a GPU the tokens
 * stay on the device and are read back in batches of `readEvery` steps.
 * With a repetition penalty, a [B,V] record of each sequence's tokens stays
 * on the device too: marked from the prompt's ids, then from each step's
 * draw ({@linkcode Backend.markTokens}), and applied to the logits before
 * sampling ({@linkcode Backend.repetitionPenalty}).
 *
 * @module
 */
import type { Backend, SampleOptions, Tensor } from "../kernels/backend.ts";
import type { LayerCache } from "./block.ts";
import { Prng } from "./prng.ts";
import type { Stage } from "./stage.ts";

/** What to generate. */
export interface GenerateOptions extends SampleOptions {
  /** Number of sequences B, all from the same prompt. */
  numSamples: number;
  /** Tokens to generate at most per sequence. */
  maxTokens: number;
  /** Seed of the sampling uniforms. */
  seed: number;
  /** Token ids that end a sequence (kept as its last token). */
  stopTokens: readonly number[];
  /** Strings that end a sequence once its decoded text contains one. */
  stopStrings?: readonly string[];
  /** Decoder for stop strings. */
  decode?: (ids: number[]) => string;
  /** Steps between read-backs of sampled tokens. @default {1} */
  readEvery?: number;
  /**
   * Repetition penalty (> 0) on the logits of every token in the prompt or
   * already generated in that sequence, before temperature; 1 is off.
   * @default {1}
   */
  repetitionPenalty?: number;
  /**
   * Called after each read-back of sampled tokens (every `readEvery` steps)
   * with the sequences so far; a finished sequence stops growing. Only
   * reads what it is given, which generation goes on extending.
   */
  onRead?: (sequences: readonly Generated[]) => void;
}

/** One generated sequence. */
export interface Generated {
  tokens: number[];
  logprobs: number[];
  stopReason: "stop" | "length";
}

/**
 * Generate `numSamples` continuations of `prompt` with the chained stages.
 *
 * Deterministic for a fixed seed on one backend: the uniforms come from a
 * seeded PRNG, B per step, in order.
 */
export async function generate(
  be: Backend,
  stages: readonly Stage[],
  prompt: readonly number[],
  opts: GenerateOptions,
): Promise<Generated[]> {
  const B = opts.numSamples, T = prompt.length;
  const capacity = T + opts.maxTokens;
  const caches: LayerCache[][] = stages.map((s) => s.newCaches(B, capacity));
  const rng = new Prng(opts.seed);
  const readEvery = Math.max(1, opts.readEvery ?? 1);
  const out: Generated[] = Array.from(
    { length: B },
    () => ({ tokens: [], logprobs: [], stopReason: "length" }),
  );
  const done = new Array<boolean>(B).fill(false);
  const stopSet = new Set(opts.stopTokens);
  const penalty = opts.repetitionPenalty ?? 1;
  let seen: Tensor | undefined; // [B,V]: 1 where a sequence holds a token
  try {
    const ids = new Int32Array(B * T);
    for (let b = 0; b < B; b++) ids.set(prompt, b * T);
    // `input` is freed right after the decode that reads it, unless it is a
    // sampled-token tensor still waiting to be read back (then the read frees it).
    let input: Tensor = be.fromInts(ids, [B * T]);
    let inputFreeable = true;
    let rows = { batch: B, seqLen: T };
    let offset = 0;
    let pending: { tokens: Tensor; logprobs: Tensor }[] = [];
    for (let step = 0; step < opts.maxTokens; step++) {
      let x = input;
      if (step === 0 && B > 1) {
        x = prefillShared(be, stages, prompt, caches, B, capacity);
      } else {
        for (let s = 0; s < stages.length; s++) {
          x = stages[s].decode(x, rows, caches[s], offset);
        }
      }
      if (penalty !== 1) {
        if (!seen) {
          seen = be.zeros([B, x.shape[1]]);
          be.markTokens(seen, input); // the prompt's ids, T a row
        }
        be.repetitionPenalty(x, seen, penalty);
      }
      if (inputFreeable) be.free(input);
      const u = new Float32Array(B);
      for (let b = 0; b < B; b++) u[b] = rng.nextFloat();
      const uniforms = be.fromArray(u, [B]);
      const drawn = be.sample(x, uniforms, opts);
      if (seen) be.markTokens(seen, drawn.tokens);
      be.free(x);
      be.free(uniforms);
      pending.push(drawn);
      offset += rows.seqLen;
      rows = { batch: B, seqLen: 1 };
      const last = step === opts.maxTokens - 1;
      if (pending.length < readEvery && !last) {
        input = drawn.tokens;
        inputFreeable = false;
        continue;
      }
      // Every pending step's tokens and logprobs in one read (one GPU wait).
      const got = await be.readMixed(
        pending.map((p) => p.tokens),
        pending.map((p) => p.logprobs),
      );
      for (let i = 0; i < pending.length; i++) {
        const p = pending[i], toks = got.ints[i], lps = got.floats[i];
        for (let b = 0; b < B; b++) {
          if (done[b]) continue;
          out[b].tokens.push(toks[b]);
          out[b].logprobs.push(lps[b]);
          if (stopSet.has(toks[b]) || hitsStopString(out[b].tokens, opts)) {
            done[b] = true;
            out[b].stopReason = "stop";
          }
        }
        if (p !== drawn) be.free(p.tokens);
        be.free(p.logprobs);
      }
      pending = [];
      opts.onRead?.(out);
      if (done.every(Boolean) || last) {
        be.free(drawn.tokens);
        break;
      }
      input = drawn.tokens;
      inputFreeable = true;
    }
  } finally {
    if (seen) be.free(seen);
    for (const cs of caches) for (const c of cs) (be.free(c.k), be.free(c.v));
  }
  return out;
}

/**
 * The prompt's prefill, once for all B samples (they share it): the stages
 * run it as one sequence into caches of their own; its keys and values are
 * then copied into the first T rows of every sample's cache, and its last
 * logits row into each sample's row. Returns the logits [B,V]. Each
 * sample's rows are computed as its own prefill would (a row of a product
 * does not depend on the others), with B times fewer operations.
 */
function prefillShared(
  be: Backend,
  stages: readonly Stage[],
  prompt: readonly number[],
  caches: LayerCache[][],
  B: number,
  capacity: number,
): Tensor {
  const T = prompt.length;
  let x = be.fromInts(Int32Array.from(prompt), [T]);
  const first = x;
  for (let s = 0; s < stages.length; s++) {
    const own = stages[s].newCaches(1, T);
    try {
      x = stages[s].decode(x, { batch: 1, seqLen: T }, own, 0);
      // Row t of the prompt's cache into row t of every sample's.
      const at = new Int32Array(B * T);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) at[b * T + t] = t;
      const rows = be.fromInts(at, [B * T]);
      try {
        own.forEach((c, i) => {
          for (const kv of ["k", "v"] as const) {
            const copies = be.embedding(c[kv], rows);
            be.writeRows(caches[s][i][kv], copies, {
              batch: B,
              rows: capacity,
              start: 0,
            });
            be.free(copies);
          }
        });
      } finally {
        be.free(rows);
      }
    } finally {
      for (const c of own) (be.free(c.k), be.free(c.v));
    }
  }
  if (first !== x && stages[0]?.range.embed) be.free(first);
  const zeros = be.fromInts(new Int32Array(B), [B]);
  const logits = be.embedding(x, zeros);
  be.free(zeros);
  be.free(x);
  return logits;
}

function hitsStopString(tokens: number[], opts: GenerateOptions): boolean {
  if (!opts.stopStrings || opts.stopStrings.length === 0 || !opts.decode) {
    return false;
  }
  const text = opts.decode(tokens);
  return opts.stopStrings.some((s) => s.length > 0 && text.includes(s));
}
