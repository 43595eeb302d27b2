import assert from "node:assert/strict";
import { parseOrThrow } from "../parse.ts";
import { AdamParamsSchema, DEFAULT_ADAM_PARAMS } from "./adam_params.ts";

const parse = (v: unknown) => parseOrThrow(AdamParamsSchema, v, "adamParams");

Deno.test("AdamParams {} takes the anchor's defaults", () => {
  assert.deepEqual(parse({}), {
    learningRate: 1e-4,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-12,
    weightDecay: 0,
    gradClipNorm: 0,
  });
  assert.deepEqual(DEFAULT_ADAM_PARAMS, parse({}));
  assert.equal(parse({ learningRate: 3e-4 }).learningRate, 3e-4);
  assert.equal(parse({ learningRate: 3e-4 }).beta2, 0.95);
});

Deno.test("learning rates that are NaN, infinite, ≤ 0 or absurd are refused", () => {
  for (const lr of [NaN, Infinity, -Infinity, -1e-4, 0, 11, "1e-4", null]) {
    assert.throws(() => parse({ learningRate: lr }), {
      name: "InvalidArgumentError",
      field: "adamParams.learningRate",
      message:
        /^adamParams\.learningRate must be a finite number in \(0, 10\]: got /,
    }, `lr ${String(lr)}`);
  }
  assert.throws(() => parse({ learningRate: NaN }), { message: /got NaN$/ });
});

Deno.test("betas, eps, weight decay and clip norm have their ranges", () => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ beta1: 1 }, "adamParams.beta1", /in \[0, 1\): got 1$/],
    [{ beta1: -0.1 }, "adamParams.beta1", /in \[0, 1\)/],
    [{ beta2: 1.5 }, "adamParams.beta2", /in \[0, 1\)/],
    [{ eps: 0 }, "adamParams.eps", /> 0: got 0$/],
    [{ weightDecay: -1 }, "adamParams.weightDecay", /≥ 0: got -1$/],
    [{ gradClipNorm: -0.5 }, "adamParams.gradClipNorm", /≥ 0/],
    [{ gradClipNorm: Infinity }, "adamParams.gradClipNorm", /got Infinity$/],
  ];
  for (const [v, field, message] of cases) {
    assert.throws(() => parse(v), { field, message }, JSON.stringify(v));
  }
  assert.equal(parse({ beta1: 0, gradClipNorm: 1 }).gradClipNorm, 1);
});

Deno.test("unknown and snake_case keys are refused, hinting the camelCase name", () => {
  assert.throws(() => parse({ "learning_rate": 1e-3 }), {
    field: "adamParams.learning_rate",
    message:
      /is not a known field \(Bios names are camelCase: learningRate\?\)/,
  });
  assert.throws(() => parse(5), { field: "adamParams" });
});
