/**
 * Streaming OpenAI responses: a choice's tokens let out as they come are
 * exactly the whole response's pieces (whatever the stop strings, an
 * end-of-turn cut, incomplete characters, or how the tokens were split
 * into messages), and chunks are sent before the sample is done.
 */
import assert from "node:assert/strict";
import { ByteTokenizer } from "../../model/byte_tokenizer.ts";
import { Prng } from "../../model/prng.ts";
import type { SampleArgs } from "../../client/sampling_client.ts";
import type { SamplingClient } from "../../client/sampling_client.ts";
import type { SampledSequence } from "../../protocol/types/responses.ts";
import { ChoiceText, type TextToken } from "./choice_text.ts";
import { completionStream, pieces } from "./render.ts";
import { toChoice, tokenOffsets } from "./sample.ts";
import { streamGeneration } from "./stream.ts";
import type { ResolvedModel } from "./model.ts";

const tok = new ByteTokenizer();
const EOS = 257;
const ALPHABET = [..."ab\nzx"].map((c) => c.charCodeAt(0)).concat(
  [...new TextEncoder().encode("é🙂")],
  [EOS],
);

/** A sequence drawn as the sampler would: stopped by a stop id or string, or by length. */
function draw(
  rng: Prng,
  stops: string[],
  stopIds: number[],
  max: number,
): SampledSequence {
  const tokens: number[] = [], logprobs: number[] = [];
  for (let i = 0; i < max; i++) {
    const t = ALPHABET[rng.nextInt(ALPHABET.length)];
    tokens.push(t);
    logprobs.push(-(i + 1) / 8);
    const text = tok.decode(tokens);
    if (stopIds.includes(t) || stops.some((s) => text.includes(s))) {
      return { tokens, logprobs, stopReason: "stop" };
    }
  }
  return { tokens, logprobs, stopReason: "length" };
}

Deno.test("ChoiceText lets out exactly a prefix of the whole response's pieces, however the tokens come", () => {
  const rng = new Prng(20261204);
  const STOP_SETS = [[], ["zz"], ["\nx", "é"], ["🙂a"], ["b"]];
  let earlyTokens = 0, allTokens = 0;
  for (let trial = 0; trial < 400; trial++) {
    const stops = STOP_SETS[trial % STOP_SETS.length];
    // An end-of-turn id the reply is cut at (as when the request also has
    // stop strings), or none.
    const cutAt = trial % 3 === 0 ? "x".charCodeAt(0) : undefined;
    const seq = draw(rng, stops, [EOS], 1 + rng.nextInt(24));
    const choice = toChoice(tok, seq, stops, cutAt);
    const ct = new ChoiceText(tok, stops, cutAt);
    const got: TextToken[] = [];
    for (let i = 0; i < seq.tokens.length;) {
      const k = 1 + rng.nextInt(4);
      got.push(
        ...ct.add(seq.tokens.slice(i, i + k), seq.logprobs.slice(i, i + k)),
      );
      i += k;
    }
    const early = got.length;
    got.push(...ct.rest(choice));
    const label = `trial ${trial}: ${JSON.stringify(tok.decode(seq.tokens))}`;
    assert.deepEqual(got.map((t) => t.piece), pieces(tok, choice), label);
    assert.equal(got.map((t) => t.piece).join(""), choice.text, label);
    got.forEach((t, i) => assert.equal(t.index, i, label));
    const offsets = tokenOffsets(tok, choice.tokens);
    for (const t of got.slice(0, choice.tokens.length)) {
      assert.equal(t.token, choice.tokens[t.index], label);
      assert.equal(t.logprob, choice.logprobs[t.index], label);
      assert.equal(t.offset, offsets[t.index], label);
    }
    // What was let out early is never the stop: only content tokens.
    assert.ok(early <= choice.tokens.length, label);
    earlyTokens += early;
    allTokens += choice.tokens.length;
  }
  // Most tokens went out before the sequence was whole.
  assert.ok(earlyTokens > allTokens / 2, `${earlyTokens} of ${allTokens}`);
});

Deno.test("ChoiceText holds back a stop string's possible start, and lets it out once it is not one", () => {
  const ct = new ChoiceText(tok, ["\nQ:"], undefined);
  const ids = tok.encode("hi\nQ");
  assert.deepEqual(
    ct.add(ids, ids.map(() => -1)).map((t) => t.piece),
    ["h", "i"], // "\n" waits: "\nQ" may start the stop
  );
  const more = tok.encode("!?");
  assert.deepEqual(
    ct.add(more, more.map(() => -1)).map((t) => t.piece),
    ["\n", "Q"], // "\nQ!" is no stop; "!" waits for the token after "?"
  );
});

Deno.test("streamGeneration sends each token's chunk while the sample is still running", async () => {
  const release = Promise.withResolvers<void>();
  const sent = Promise.withResolvers<void>();
  const seq: SampledSequence = {
    tokens: tok.encode("héllo"),
    logprobs: [-1, -2, -3, -4, -5, -6],
    stopReason: "length",
  };
  const sampler = {
    async sample(args: SampleArgs) {
      args.onTokens!({
        sequences: [{
          from: 0,
          tokens: seq.tokens.slice(0, 4),
          logprobs: seq.logprobs.slice(0, 4),
        }],
      });
      sent.resolve();
      await release.promise; // the rest of the generation
      args.onTokens!({
        sequences: [{
          from: 4,
          tokens: seq.tokens.slice(4),
          logprobs: seq.logprobs.slice(4),
        }],
      });
      return { sequences: [seq] };
    },
  } as unknown as SamplingClient;
  const model: ResolvedModel = { sampler, tokenizer: tok, maxContext: 64 };
  const chunks = await streamGeneration(
    {
      model,
      prompts: [[1, 2]],
      n: 1,
      params: { maxTokens: 6 },
      promptField: "prompt",
    },
    completionStream({ id: "cmpl-1", created: 0, model: "m" }, tok, true),
    true,
  );
  await sent.promise;
  const it = chunks[Symbol.asyncIterator]();
  const texts: string[] = [];
  // "h", "é" (two bytes: the first piece empty) are out before the rest is drawn.
  for (let i = 0; i < 2; i++) {
    const c = (await it.next()).value as { choices: { text: string }[] };
    texts.push(c.choices[0].text);
  }
  assert.deepEqual(texts, ["h", ""]);
  release.resolve();
  const rest: Record<string, unknown>[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    rest.push(r.value);
  }
  const body = rest as {
    choices: { text?: string; finish_reason: string | null }[];
    usage?: unknown;
  }[];
  assert.equal(
    texts.join("") +
      body.flatMap((c) => c.choices.map((x) => x.text ?? "")).join(""),
    "héllo",
  );
  assert.equal(body.at(-2)?.choices[0].finish_reason, "length");
  assert.deepEqual(body.at(-1)?.usage, {
    "prompt_tokens": 2,
    "completion_tokens": 6,
    "total_tokens": 8,
  });
});

Deno.test("streamGeneration: a refusal before the first token is thrown (an HTTP error), not streamed", async () => {
  const sampler = {
    sample: () => Promise.reject(new Error("the sampler refused it")),
  } as unknown as SamplingClient;
  await assert.rejects(
    () =>
      streamGeneration(
        {
          model: { sampler, tokenizer: tok, maxContext: 64 },
          prompts: [[1]],
          n: 1,
          params: { maxTokens: 2 },
          promptField: "prompt",
        },
        completionStream({ id: "c", created: 0, model: "m" }, tok, false),
        false,
      ),
    /the sampler refused it/,
  );
});
