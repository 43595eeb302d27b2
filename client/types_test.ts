import assert from "node:assert/strict";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  CreateLoraTrainingClientOptionsSchema,
  DatumSchema,
  ModelInputSchema,
} from "../protocol/mod.ts";
import * as types from "./types.ts";

Deno.test("bios.types.ModelInput.fromInts builds a valid prompt", () => {
  const prompt = types.ModelInput.fromInts([1, 2, 3]);
  assert.equal(types.ModelInput.length(prompt), 3);
  assert.deepEqual(parseOrThrow(ModelInputSchema, prompt, "prompt"), prompt);
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
  const a: types.Datum = parseOrThrow(DatumSchema, plain, "datum");
  const b: types.Datum = parseOrThrow(DatumSchema, helper, "datum");
  assert.deepEqual(a.modelInput, b.modelInput);
  assert.deepEqual(Object.keys(a.lossFnInputs), Object.keys(b.lossFnInputs));
});

Deno.test("the user-facing values are exported and usable", () => {
  assert.deepEqual(Object.keys(types).sort(), [
    "AdamParamsSchema",
    "CHECKPOINT_KINDS",
    "DEFAULT_ADAM_PARAMS",
    "DatumSchema",
    "EncodedTextChunkSchema",
    "LORA_TARGET_MODULES",
    "LOSS_FN_TYPES",
    "LOSS_INPUT_KEYS",
    "LoraConfigSchema",
    "LossFnTypeSchema",
    "MAX_SAMPLING_TOKENS",
    "ModelInput",
    "ModelInputSchema",
    "SamplingParamsSchema",
    "TENSOR_DTYPES",
    "TensorDataSchema",
    "checkpointPath",
    "parseCheckpointPath",
    "tensorData",
    "validateCheckpointName",
  ]);
  assert.equal(types.DEFAULT_ADAM_PARAMS.learningRate, 1e-4);
  assert.ok(types.LOSS_FN_TYPES.includes("cross_entropy"));
  const path = types.checkpointPath({
    runId: "run-1",
    kind: "sampler_weights",
    name: "production-model",
  });
  assert.equal(types.parseCheckpointPath(path).name, "production-model");
  const opts: types.CreateLoraTrainingClientOptionsInput = {
    baseModel: "ultrasafe/usf-finance",
    rank: 16,
  };
  const parsed = parseOrThrow(
    CreateLoraTrainingClientOptionsSchema,
    opts,
    "options",
  );
  assert.equal(parsed.alpha, 32);
});

Deno.test("types: the zod schemas validate and fill defaults", async () => {
  const t = await import("./types.ts");
  assert.deepEqual(t.AdamParamsSchema.parse({}), {
    learningRate: 1e-4,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-12,
    weightDecay: 0,
    gradClipNorm: 0,
  });
  assert.equal(t.SamplingParamsSchema.parse({ maxTokens: 4 }).topP, 1);
  assert.equal(t.LoraConfigSchema.parse({}).rank, 32);
  assert.ok(
    t.DatumSchema.safeParse({
      modelInput: t.ModelInput.fromInts([1]),
      lossFnInputs: { targetTokens: [2] },
    }).success,
  );
  assert.ok(
    !t.ModelInputSchema.safeParse({
      chunks: [{ type: "encoded_text", tokens: [-1] }],
    }).success,
  );
});
