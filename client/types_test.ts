import assert from "node:assert/strict";
import { parseOrThrow } from "../protocol/parse.ts";
import * as types from "./types.ts";

Deno.test("bios.types.ModelInput.fromInts builds a valid prompt", () => {
  const prompt = types.ModelInput.fromInts([1, 2, 3]);
  assert.equal(types.ModelInput.length(prompt), 3);
  assert.deepEqual(
    parseOrThrow(types.ModelInputSchema, prompt, "prompt"),
    prompt,
  );
});

Deno.test("helper-made and plain datums validate alike", () => {
  const plain: types.DatumInput = {
    modelInput: { chunks: [{ type: "encoded_text", tokens: [1, 2] }] },
    lossFnInputs: { targetTokens: [2, 3], weights: [1, 1] },
  };
  const helper: types.DatumInput = {
    modelInput: types.ModelInput.fromInts([1, 2]),
    lossFnInputs: {
      targetTokens: types.tensorData(new Int32Array([2, 3])),
      weights: [1, 1],
    },
  };
  const a: types.Datum = parseOrThrow(types.DatumSchema, plain, "datum");
  const b: types.Datum = parseOrThrow(types.DatumSchema, helper, "datum");
  assert.deepEqual(a.modelInput, b.modelInput);
  assert.deepEqual(Object.keys(a.lossFnInputs), Object.keys(b.lossFnInputs));
});

Deno.test("the user-facing schemas and helpers are all exported", () => {
  const names = [
    "ModelInput",
    "ModelInputSchema",
    "EncodedTextChunkSchema",
    "TensorDataSchema",
    "tensorData",
    "DatumSchema",
    "LOSS_FN_TYPES",
    "LossFnTypeSchema",
    "AdamParamsSchema",
    "DEFAULT_ADAM_PARAMS",
    "SamplingParamsSchema",
    "MAX_SAMPLING_TOKENS",
    "LoraConfigSchema",
    "CreateLoraTrainingClientOptionsSchema",
    "LORA_TARGET_MODULES",
    "parseCheckpointPath",
    "checkpointPath",
    "validateCheckpointName",
  ];
  for (const n of names) assert.ok(n in types, n);
  assert.deepEqual(types.DEFAULT_ADAM_PARAMS.learningRate, 1e-4);
  const opts: types.CreateLoraTrainingClientOptionsInput = {
    baseModel: "ultrasafe/usf-finance",
    rank: 16,
  };
  assert.equal(
    parseOrThrow(types.CreateLoraTrainingClientOptionsSchema, opts, "options")
      .alpha,
    32,
  );
});
