import assert from "node:assert/strict";
import { parseOrThrow } from "../parse.ts";
import { SamplingParamsSchema } from "./sampling_params.ts";

const parse = (v: unknown) =>
  parseOrThrow(SamplingParamsSchema, v, "samplingParams");

Deno.test("sampling defaults are filled in", () => {
  assert.deepEqual(parse({ maxTokens: 16 }), {
    maxTokens: 16,
    temperature: 1,
    topK: -1,
    topP: 1,
    minP: 0,
    repetitionPenalty: 1,
  });
  const p = parse({
    maxTokens: 8,
    temperature: 0,
    topK: 40,
    topP: 0.9,
    seed: 7,
    stop: ["\n"],
  });
  assert.equal(p.temperature, 0);
  assert.deepEqual(p.stop, ["\n"]);
});

Deno.test("maxTokens is required unless a non-empty stop is given", () => {
  assert.throws(() => parse({}), {
    field: "samplingParams.maxTokens",
    message:
      /^samplingParams\.maxTokens is required unless a non-empty stop is given/,
  });
  assert.throws(() => parse({ stop: [] }), {
    field: "samplingParams.maxTokens",
  });
  assert.equal(parse({ stop: "</s>" }).maxTokens, undefined);
  assert.deepEqual(parse({ stop: [2] }).stop, [2]);
});

Deno.test("out-of-range sampling settings name their field and limit", () => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ maxTokens: 0 }, "samplingParams.maxTokens", /in \[1, 4096\]: got 0$/],
    [{ maxTokens: -3 }, "samplingParams.maxTokens", /got -3$/],
    [{ maxTokens: 4097 }, "samplingParams.maxTokens", /got 4097$/],
    [{ maxTokens: 2.5 }, "samplingParams.maxTokens", /got 2\.5$/],
    [
      { maxTokens: 1, temperature: -1 },
      "samplingParams.temperature",
      /≥ 0.*got -1$/,
    ],
    [
      { maxTokens: 1, temperature: NaN },
      "samplingParams.temperature",
      /got NaN$/,
    ],
    [
      { maxTokens: 1, topP: 0 },
      "samplingParams.topP",
      /^samplingParams\.topP must be in \(0, 1\]: got 0$/,
    ],
    [
      { maxTokens: 1, topP: 1.5 },
      "samplingParams.topP",
      /^samplingParams\.topP must be in \(0, 1\]: got 1\.5$/,
    ],
    [
      { maxTokens: 1, topK: 0 },
      "samplingParams.topK",
      /-1 \(off\) or an integer ≥ 1: got 0$/,
    ],
    [{ maxTokens: 1, topK: -2 }, "samplingParams.topK", /got -2$/],
    [{ maxTokens: 1, seed: 1.5 }, "samplingParams.seed", /integer/],
    [{ maxTokens: 1, seed: -1 }, "samplingParams.seed", /got -1$/],
    [
      { maxTokens: 1, stop: "" },
      "samplingParams.stop",
      /must not be an empty string/,
    ],
    [{ maxTokens: 1, stop: [1, -1] }, "samplingParams.stop[1]", /token id/],
    [
      { maxTokens: 1, stop: 5 },
      "samplingParams.stop",
      /a string, an array of strings, or an array of token ids: got 5$/,
    ],
    [
      { maxTokens: 1, minP: -0.1 },
      "samplingParams.minP",
      /^samplingParams\.minP must be in \[0, 1\] \(0 is off\): got -0\.1$/,
    ],
    [{ maxTokens: 1, minP: 1.01 }, "samplingParams.minP", /got 1\.01$/],
    [{ maxTokens: 1, minP: "0.1" }, "samplingParams.minP", /\[0, 1\]/],
    [
      { maxTokens: 1, repetitionPenalty: 0 },
      "samplingParams.repetitionPenalty",
      /^samplingParams\.repetitionPenalty must be in \(0, 10\] \(1 is off\): got 0$/,
    ],
    [
      { maxTokens: 1, repetitionPenalty: 10.5 },
      "samplingParams.repetitionPenalty",
      /got 10\.5$/,
    ],
    [
      { maxTokens: 1, repetitionPenalty: Infinity },
      "samplingParams.repetitionPenalty",
      /got Infinity$/,
    ],
    [
      { maxTokens: 1, presencePenalty: 0.1 },
      "samplingParams.presencePenalty",
      /not a known field/,
    ],
  ];
  for (const [v, field, message] of cases) {
    assert.throws(() => parse(v), {
      name: "InvalidArgumentError",
      field,
      message,
    }, JSON.stringify(v));
  }
});
