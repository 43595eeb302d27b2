import assert from "node:assert/strict";
import { z } from "zod";
import { describeValue, fieldName, parseOrThrow } from "./parse.ts";

Deno.test("fieldName joins roots and paths the way users write them", () => {
  assert.equal(
    fieldName("data", [0, "lossFnInputs", "weights"]),
    "data[0].lossFnInputs.weights",
  );
  assert.equal(
    fieldName("", ["samplingParams", "topP"]),
    "samplingParams.topP",
  );
  assert.equal(fieldName("m", ["a:b"]), 'm["a:b"]');
  assert.equal(fieldName("", []), "value");
});

Deno.test("describeValue renders received values briefly", () => {
  assert.equal(describeValue(1.5), "1.5");
  assert.equal(describeValue(NaN), "NaN");
  assert.equal(describeValue("x"), '"x"');
  assert.equal(describeValue([1, 2]), "an array of length 2");
  assert.equal(
    describeValue(new Float32Array(3)),
    "a Float32Array of length 3",
  );
  assert.equal(describeValue({}), "an object");
  assert.match(describeValue("y".repeat(200)), /…" \(200 chars\)$/);
});

Deno.test("parseOrThrow returns defaulted data or one InvalidArgumentError", () => {
  const s = z.strictObject({
    n: z.number().min(1).default(2),
    tags: z.array(z.string()).optional(),
  });
  assert.deepEqual(parseOrThrow(s, {}, "opts"), { n: 2 });
  assert.throws(() => parseOrThrow(s, { n: 0 }, "opts"), {
    name: "InvalidArgumentError",
    code: "invalid_argument",
    field: "opts.n",
    message: "opts.n must be ≥ 1: got 0",
  });
  assert.throws(() => parseOrThrow(s, { tags: ["a", 3] }, "opts"), {
    field: "opts.tags[1]",
    message: "opts.tags[1] must be a string: got 3",
  });
  assert.throws(() => parseOrThrow(z.object({ k: z.string() }), {}, "o"), {
    field: "o.k",
    message: "o.k is required and must be a string",
  });
  assert.throws(() => parseOrThrow(s, { m_x: 1 }, "opts"), {
    field: "opts.m_x",
    message: "opts.m_x is not a known field (Bios names are camelCase: mX?)",
  });
});

Deno.test("a union failure reports the branch the value was meant for", () => {
  const s = z.union([z.string(), z.strictObject({ a: z.number().max(3) })]);
  assert.throws(() => parseOrThrow(s, { a: 9 }, "u"), {
    field: "u.a",
    message: "u.a must be ≤ 3: got 9",
  });
  assert.throws(() => parseOrThrow(s, 5, "u"), {
    field: "u",
    message: /^u matches none of the accepted forms: got 5$/,
  });
});
