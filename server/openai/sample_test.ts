/**
 * Unit tests of the OpenAI routes' pieces: a chat template's end of turn,
 * a sequence made a choice (cut at a stop string, at an end-of-turn id, its
 * stop token dropped), and a choice's stream pieces joining to its text.
 */
import assert from "node:assert/strict";
import { ByteTokenizer } from "../../model/byte_tokenizer.ts";
import { tokenizerFromFiles } from "../../model/tokenizer.ts";
import { endOfTurn } from "./end_of_turn.ts";
import { pieces } from "./render.ts";
import { samplingParams, toChoice } from "./sample.ts";

const FIXTURES = new URL("../../tests/fixtures/chat/", import.meta.url);

async function fixture(style: string) {
  const files: Record<string, string> = {};
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    files[f] = await Deno.readTextFile(new URL(`${style}/${f}`, FIXTURES));
  }
  return tokenizerFromFiles(files);
}

Deno.test("endOfTurn: ChatML's <|im_end|> and Llama 3's <|eot_id|>, each one special token", async () => {
  assert.deepEqual(endOfTurn(await fixture("chatml")), {
    text: "<|im_end|>",
    id: 1,
  });
  assert.deepEqual(endOfTurn(await fixture("llama3")), {
    text: "<|eot_id|>",
    id: 3,
  });
});

Deno.test("toChoice: the text up to a stop string, an end-of-turn id, or without its stop token", () => {
  const tok = new ByteTokenizer();
  const ids = (s: string) => tok.encode(s);
  const seq = (tokens: number[], stopReason: "stop" | "length") => ({
    tokens,
    logprobs: tokens.map((_, i) => -i),
    stopReason,
  });
  const byString = toChoice(
    tok,
    seq(ids("abc\n\nde"), "stop"),
    ["\n\n"],
    undefined,
  );
  assert.equal(byString.text, "abc");
  assert.deepEqual(byString.logprobs, [-0, -1, -2]);
  assert.equal(byString.generated, 7);
  const byEos = toChoice(tok, seq([...ids("hi"), 257], "stop"), [], undefined);
  assert.deepEqual([byEos.text, byEos.tokens.length, byEos.generated], [
    "hi",
    2,
    3,
  ]);
  // The sampler stopped at a string later than the end-of-turn id: cut there.
  const byId = toChoice(tok, seq([...ids("ok"), 7, ...ids("xyz")], "length"), [
    "z",
  ], 7);
  assert.deepEqual([byId.text, byId.finishReason, byId.generated], [
    "ok",
    "stop",
    3,
  ]);
  const byLength = toChoice(tok, seq(ids("abc"), "length"), ["q"], undefined);
  assert.deepEqual([byLength.text, byLength.finishReason], ["abc", "length"]);
});

Deno.test("pieces: a choice's stream pieces join to its text, multi-byte characters whole", () => {
  const tok = new ByteTokenizer();
  const tokens = tok.encode("né 🙂!");
  const c = toChoice(
    tok,
    { tokens, logprobs: tokens.map(() => 0), stopReason: "length" },
    [],
    undefined,
  );
  const ps = pieces(tok, c);
  assert.equal(ps.join(""), "né 🙂!");
  assert.ok(ps.every((p) => !p.includes("\uFFFD")));
  assert.equal(ps.length, tokens.length);
});

Deno.test("samplingParams: stop strings and an end-of-turn id cannot share one request: strings go, the id is cut at", () => {
  const both = samplingParams({ stop: "x" }, { strings: ["x"], id: 5 }, 16);
  assert.deepEqual([both.params.stop, both.cutAt], [["x"], 5]);
  const idOnly = samplingParams({}, { strings: [], id: 5 }, 16);
  assert.deepEqual(
    [idOnly.params.stop, idOnly.params.maxTokens, idOnly.cutAt],
    [[5], undefined, undefined],
  );
  const none = samplingParams({}, { strings: [] }, 16);
  assert.equal(none.params.maxTokens, 16);
  assert.throws(() => samplingParams({ topP: 2 }, { strings: [] }, 16), {
    name: "OpenAIError",
    param: "top_p",
  });
});
