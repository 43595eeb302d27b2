import assert from "node:assert/strict";
import { parseOrThrow } from "../parse.ts";
import {
  DatumBatchSchema,
  DatumSchema,
  normalizeBatch,
  normalizeDatum,
} from "./datum.ts";
import { ModelInput } from "./model_input.ts";

const mi = ModelInput.fromInts([5, 6, 7]);

Deno.test("plain-array loss inputs are accepted and typed by key", () => {
  const d = normalizeDatum({
    modelInput: mi,
    lossFnInputs: { targetTokens: [6, 7, 8], weights: [0, 1, 1] },
  });
  assert.deepEqual(d.tokens, new Int32Array([5, 6, 7]));
  assert.ok(d.inputs.targetTokens instanceof Int32Array);
  assert.ok(d.inputs.weights instanceof Float32Array);
  assert.deepEqual(d.inputs.targetTokens, new Int32Array([6, 7, 8]));
  assert.deepEqual(d.inputs.weights, new Float32Array([0, 1, 1]));
});

Deno.test("TensorData, typed arrays and snake_case keys normalise alike", () => {
  const d = normalizeDatum({
    modelInput: { chunks: [{ type: "encoded_text", tokens: [5, 6, 7] }] },
    lossFnInputs: {
      "target_tokens": { data: [6, 7, 8], dtype: "int64", shape: [3] },
      advantages: new Float32Array([0.5, -1, 2]),
      logprobs: { data: new Float32Array([-0.1, -2, 0]), dtype: "float32" },
    },
  });
  assert.deepEqual(Object.keys(d.inputs).sort(), [
    "advantages",
    "logprobs",
    "targetTokens",
  ]);
  assert.deepEqual(d.inputs.targetTokens, new Int32Array([6, 7, 8]));
  assert.deepEqual(d.inputs.advantages, new Float32Array([0.5, -1, 2]));
  const parsed = parseOrThrow(DatumSchema, {
    modelInput: mi,
    lossFnInputs: { "target_tokens": [1, 2, 3] },
  }, "datum");
  assert.deepEqual(Object.keys(parsed.lossFnInputs), ["targetTokens"]);
});

Deno.test("loss input lengths must match the model input", () => {
  assert.throws(
    () =>
      normalizeDatum(
        { modelInput: mi, lossFnInputs: { targetTokens: [6, 7] } },
        2,
      ),
    {
      name: "InvalidArgumentError",
      field: "data[2].lossFnInputs.targetTokens",
      message:
        /must have one value per model-input token \(3\): got an array of length 2/,
    },
  );
  assert.throws(
    () =>
      normalizeDatum({
        modelInput: mi,
        lossFnInputs: { targetTokens: [6, 7, 8], weights: [1, 1, 1, 1] },
      }, 0),
    { field: "data[0].lossFnInputs.weights" },
  );
  assert.throws(
    () =>
      normalizeDatum({
        modelInput: mi,
        lossFnInputs: {
          targetTokens: { data: [1, 2], dtype: "int64", shape: [3] },
        },
      }, 0),
    { field: "data[0].lossFnInputs.targetTokens.shape" },
  );
});

Deno.test("bad loss input values are refused with their position", () => {
  const bad = (inputs: Record<string, unknown>) => () =>
    normalizeDatum({
      modelInput: mi,
      lossFnInputs: { targetTokens: [1, 2, 3], ...inputs },
    }, 0);
  assert.throws(bad({ weights: [1, NaN, 1] }), {
    field: "data[0].lossFnInputs.weights[1]",
    message: /must be a weight in \[-1000000, 1000000\]: got NaN/,
  });
  // Finite as a float32, but a loss over such weights is not: 3e38 is refused.
  assert.throws(bad({ weights: [1, 3e38, 1] }), {
    field: "data[0].lossFnInputs.weights[1]",
    message: /must be a weight in \[-1000000, 1000000\]: got 3e\+38/,
  });
  assert.throws(bad({ advantages: [0, -2e6, 0] }), {
    field: "data[0].lossFnInputs.advantages[1]",
  });
  assert.throws(bad({ logprobs: [-1, -1e4, -1] }), {
    field: "data[0].lossFnInputs.logprobs[1]",
  });
  // Signed weights are accepted (the anchor's custom losses send them);
  // past the bound either way they are not.
  bad({ weights: [1, 1, -1] })();
  assert.throws(bad({ weights: [1, 1, -2e6] }), {
    field: "data[0].lossFnInputs.weights[2]",
  });
  assert.throws(bad({ advantages: [Infinity, 0, 0] }), {
    field: "data[0].lossFnInputs.advantages[0]",
  });
  assert.throws(bad({ logprobs: [-1, 0.5, -1] }), {
    field: "data[0].lossFnInputs.logprobs[1]",
    message: /log-probability/,
  });
  assert.throws(bad({ targetTokens: [1, -2, 3] }), {
    field: "data[0].lossFnInputs.targetTokens[1]",
  });
  assert.throws(bad({ targetTokens: [1, 2.5, 3] }), {
    field: "data[0].lossFnInputs.targetTokens[1]",
  });
  assert.throws(bad({ targetTokens: { data: [1, 2, 3], dtype: "float32" } }), {
    field: "data[0].lossFnInputs.targetTokens.dtype",
    message: /must be "int64" for targetTokens: got "float32"/,
  });
  assert.throws(bad({ bogus: [1, 2, 3] }), {
    field: "data[0].lossFnInputs.bogus",
    message: /is not a known loss input/,
  });
  assert.throws(bad({ "target_tokens": [1, 2, 3] }), {
    field: "data[0].lossFnInputs.target_tokens",
    message: /given twice/,
  });
  assert.throws(bad({ weights: "1,1,1" }), {
    field: "data[0].lossFnInputs.weights",
  });
});

Deno.test("a datum needs tokens and targetTokens", () => {
  assert.throws(
    () =>
      normalizeDatum({
        modelInput: ModelInput.empty(),
        lossFnInputs: { targetTokens: [] },
      }, 0),
    { field: "data[0].modelInput", message: /must hold at least 1 token/ },
  );
  assert.throws(
    () =>
      normalizeDatum(
        { modelInput: mi, lossFnInputs: { weights: [1, 1, 1] } },
        1,
      ),
    {
      field: "data[1].lossFnInputs.targetTokens",
      message:
        /data\[1\]\.lossFnInputs\.targetTokens is required by every loss/,
    },
  );
  assert.throws(() => normalizeDatum({ modelInput: mi }), {
    field: "datum.lossFnInputs",
  });
});

Deno.test("a batch must hold at least 1 datum", () => {
  assert.throws(() => normalizeBatch([]), {
    name: "InvalidArgumentError",
    field: "data",
    message: /data must have at least 1 datum: got an array of length 0/,
  });
  assert.throws(() => parseOrThrow(DatumBatchSchema, "x", "data"), {
    field: "data",
  });
  const batch = normalizeBatch([
    { modelInput: mi, lossFnInputs: { targetTokens: [1, 2, 3] } },
    {
      modelInput: ModelInput.fromInts([9]),
      lossFnInputs: { targetTokens: [4] },
    },
  ]);
  assert.equal(batch.length, 2);
  assert.deepEqual(batch[1].tokens, new Int32Array([9]));
  assert.throws(
    () =>
      normalizeBatch([
        { modelInput: mi, lossFnInputs: { targetTokens: [1, 2, 3] } },
        { modelInput: mi, lossFnInputs: { targetTokens: [1, 2] } },
      ]),
    { field: "data[1].lossFnInputs.targetTokens" },
  );
});
