import assert from "node:assert/strict";
import { decode, encode } from "../runtime/codec.ts";
import {
  ForwardBackwardRequestSchema,
  ProtocolRequestSchema,
  REPLY_SCHEMAS,
  SamplerRequestSchema,
  TrainerRequestSchema,
} from "./messages.ts";
import { parseOrThrow } from "./parse.ts";
import { ModelInput } from "./types/model_input.ts";

const mi = ModelInput.fromInts([1, 2, 3]);
const sft = {
  modelInput: mi,
  lossFnInputs: { targetTokens: [2, 3, 4], weights: [0, 1, 1] },
};
const rl = {
  modelInput: mi,
  lossFnInputs: {
    targetTokens: [2, 3, 4],
    logprobs: [-1, -1, -1],
    advantages: [0, 1, 1],
  },
};
const fb = (extra: Record<string, unknown>) => ({
  type: "forward_backward",
  runId: "run-1",
  seq: 1,
  data: [sft],
  lossFn: "cross_entropy",
  ...extra,
});
const parse = (v: unknown) => parseOrThrow(ProtocolRequestSchema, v, "");

Deno.test("every request type parses, with defaults filled", () => {
  const reqs = [
    fb({}),
    fb({ type: "forward" }),
    fb({
      data: [rl],
      lossFn: "ppo",
      lossFnConfig: { "clip_low_threshold": 0.7 },
    }),
    { type: "optim_step", runId: "run-1", seq: 2, adamParams: {} },
    { type: "save_state", runId: "run-1", seq: 3, name: "epoch_0" },
    { type: "save_weights_for_sampler", runId: "run-1", seq: 4, name: "s" },
    {
      type: "load_state",
      runId: "run-1",
      seq: 5,
      path: "bios://run-1/weights/epoch_0",
      optimizer: true,
    },
    { type: "get_info", runId: "run-1" },
    {
      type: "sample",
      prompt: mi,
      numSamples: 4,
      samplingParams: { maxTokens: 8 },
    },
  ];
  const out = reqs.map(parse);
  assert.deepEqual(out.map((r) => r.type), reqs.map((r) => r.type));
  const ppo = out[2];
  assert.ok(ppo.type === "forward_backward");
  assert.deepEqual(ppo.lossFnConfig, { clipLowThreshold: 0.7 });
  const optim = out[3];
  assert.ok(optim.type === "optim_step");
  assert.equal(optim.adamParams.beta2, 0.95);
  const save = out[4];
  assert.ok(save.type === "save_state");
  assert.equal(save.overwrite, false);
  const sample = out[8];
  assert.ok(sample.type === "sample");
  assert.equal(sample.includePromptLogprobs, false);
  assert.equal(sample.samplingParams.topP, 1);
  assert.equal(parseOrThrow(SamplerRequestSchema, reqs[8], "").type, "sample");
  assert.throws(() => parseOrThrow(TrainerRequestSchema, reqs[8], ""), {
    field: "type",
  });
});

Deno.test("requests survive the wire codec unchanged", () => {
  const typed = {
    ...fb({}),
    data: [{
      modelInput: {
        chunks: [{ type: "encoded_text", tokens: new Int32Array([1, 2]) }],
      },
      lossFnInputs: {
        targetTokens: {
          data: new Int32Array([2, 3]),
          dtype: "int64",
          shape: [2],
        },
        weights: new Float32Array([0.5, 1]),
      },
    }],
  };
  for (
    const req of [typed, {
      type: "sample",
      prompt: mi,
      numSamples: 1,
      samplingParams: { stop: "\n" },
    }]
  ) {
    const parsed = parse(req);
    assert.deepEqual(parse(decode(encode(parsed))), parsed);
  }
});

Deno.test("unknown loss functions and request types are refused", () => {
  for (const lossFn of ["crossentropy", "", null, undefined]) {
    assert.throws(() => parse(fb({ lossFn })), {
      name: "InvalidArgumentError",
      field: "lossFn",
      message:
        /^lossFn (is required and )?must be one of "cross_entropy", "importance_sampling", "ppo", "cispo", "dro"/,
    }, String(lossFn));
  }
  assert.throws(() => parse(fb({ type: "train" })), {
    field: "type",
    message: /^type must be one of "forward", "forward_backward"/,
  });
  assert.throws(() => parse("hello"), { field: "value" });
});

Deno.test("run id, seq and batch are checked on training operations", () => {
  assert.throws(() => parse(fb({ seq: 0 })), {
    field: "seq",
    message: /integer ≥ 1: got 0$/,
  });
  assert.throws(() => parse(fb({ seq: 1.5 })), { field: "seq" });
  assert.throws(() => parse(fb({ runId: "" })), { field: "runId" });
  assert.throws(() => parse(fb({ runId: "a/b" })), { field: "runId" });
  assert.throws(() => parse(fb({ data: [] })), {
    field: "data",
    message: /^data must have at least 1 datum: got an array of length 0$/,
  });
  assert.throws(
    () =>
      parse(fb({ data: [sft, { ...sft, modelInput: ModelInput.empty() }] })),
    {
      field: "data[1].modelInput",
    },
  );
  assert.throws(() => parse(fb({ extra: 1 })), {
    field: "extra",
    message: /not a known field/,
  });
});

Deno.test("each loss requires its inputs and takes only its settings", () => {
  assert.throws(() => parse(fb({ lossFn: "ppo" })), {
    field: "data[0].lossFnInputs.logprobs",
    message: /is required by ppo/,
  });
  assert.throws(() => parse(fb({ data: [rl] })), {
    field: "data[0].lossFnInputs.logprobs",
    message:
      /is not an input of cross_entropy \(it takes targetTokens, weights\)/,
  });
  assert.throws(() => parse(fb({ lossFnConfig: { beta: 1 } })), {
    field: "lossFnConfig.beta",
    message: /not a setting of cross_entropy/,
  });
  assert.throws(
    () =>
      parse(
        fb({
          data: [rl],
          lossFn: "ppo",
          lossFnConfig: { clipLowThreshold: 2 },
        }),
      ),
    {
      field: "lossFnConfig.clipHighThreshold",
    },
  );
  assert.throws(
    () => parse(fb({ data: [rl], lossFn: "dro", lossFnConfig: { beta: 0 } })),
    {
      field: "lossFnConfig.beta",
    },
  );
  assert.throws(
    () => parse(fb({ data: [rl], lossFn: "dro", lossFnConfig: { beta: NaN } })),
    {
      field: "lossFnConfig.beta",
    },
  );
  const ok = parseOrThrow(
    ForwardBackwardRequestSchema,
    fb({
      data: [{ modelInput: mi, lossFnInputs: { targetTokens: [1, 1, 1] } }],
    }),
    "",
  );
  assert.equal(ok.data.length, 1);
});

Deno.test("checkpoint and sampling requests check their fields", () => {
  assert.throws(
    () => parse({ type: "save_state", runId: "r", seq: 1, name: "../x" }),
    { field: "name" },
  );
  assert.throws(
    () =>
      parse({
        type: "load_state",
        runId: "r",
        seq: 1,
        path: "bios://r/sampler_weights/x",
        optimizer: false,
      }),
    { field: "path", message: /cannot be loaded for training/ },
  );
  assert.throws(
    () =>
      parse({
        type: "load_state",
        runId: "r",
        seq: 1,
        path: "bios://r/weights/x",
      }),
    {
      field: "optimizer",
    },
  );
  const sample = (extra: Record<string, unknown>) =>
    parse({
      type: "sample",
      prompt: mi,
      numSamples: 1,
      samplingParams: { maxTokens: 4 },
      ...extra,
    });
  assert.throws(() => sample({ numSamples: 0 }), {
    field: "numSamples",
    message: /^numSamples must be an integer in \[1, 128\]: got 0$/,
  });
  assert.throws(() => sample({ numSamples: 129 }), { field: "numSamples" });
  assert.throws(() => sample({ prompt: ModelInput.empty() }), {
    field: "prompt",
    message: /at least 1 token/,
  });
  assert.throws(() => sample({ samplingParams: { maxTokens: 4, topP: 1.5 } }), {
    field: "samplingParams.topP",
    message: /^samplingParams\.topP must be in \(0, 1\]: got 1\.5$/,
  });
});

Deno.test("reply schemas accept well-formed replies and refuse bad metric keys", () => {
  const out = {
    lossFnOutputType: "ArrayRecord",
    lossFnOutputs: [{
      logprobs: {
        data: new Float32Array([-1, -2]),
        dtype: "float32",
        shape: [2],
      },
    }],
    metrics: { "loss:sum": NaN },
    loss: NaN,
  };
  assert.ok(
    Number.isNaN(
      parseOrThrow(REPLY_SCHEMAS.forward_backward, out, "reply").loss,
    ),
  );
  assert.throws(
    () =>
      parseOrThrow(REPLY_SCHEMAS.forward_backward, {
        ...out,
        metrics: { loss: 1 },
      }, "reply"),
    {
      field: "reply.metrics.loss",
      message: /exactly one ":"/,
    },
  );
  assert.throws(
    () =>
      parseOrThrow(
        REPLY_SCHEMAS.optim_step,
        { metrics: { "a:b:c": 1 } },
        "reply",
      ),
    {
      field: 'reply.metrics["a:b:c"]',
    },
  );
  const seq = {
    stopReason: "length",
    tokens: [1, 2],
    logprobs: [-0.5, -Infinity],
  };
  assert.equal(
    parseOrThrow(REPLY_SCHEMAS.sample, {
      sequences: [seq],
      promptLogprobs: [null, -1],
    }, "r").sequences.length,
    1,
  );
  assert.throws(
    () =>
      parseOrThrow(REPLY_SCHEMAS.sample, {
        sequences: [{ ...seq, stopReason: "eos" }],
      }, "r"),
    {
      field: "r.sequences[0].stopReason",
      message: /must be one of "stop", "length"/,
    },
  );
  const info = {
    modelId: "m",
    modelData: { arch: "llama", modelName: "x" },
    isLora: true,
    loraRank: 8,
    modelName: "x",
  };
  assert.equal(parseOrThrow(REPLY_SCHEMAS.get_info, info, "r").loraRank, 8);
  assert.equal(
    parseOrThrow(REPLY_SCHEMAS.save_state, { path: "bios://r/weights/n" }, "r")
      .path,
    "bios://r/weights/n",
  );
});
