/**
 * The HTTP client's side of the Tinker wire (client/tinker_wire.ts) against
 * the gateway's (server/tinker/): a request the client writes is read back
 * by the gateway as the same protocol message, and a result the gateway
 * renders is read back by the client as the same Bios value.
 */
import assert from "node:assert/strict";
import { TrainerRequestSchema } from "../protocol/messages.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import type { TrainerOp } from "../client/trainer_op.ts";
import {
  errorFromJson,
  forwardBackwardFromJson,
  sampleBody,
  sampleFromJson,
  trainerRequestWire,
  wirePath,
} from "../client/tinker_wire.ts";
import {
  checkTrainerCall,
  forwardBackwardCall,
  loadWeightsCall,
  optimStepCall,
  sampleCall,
  saveForSamplerCall,
  saveWeightsCall,
} from "../server/tinker/to_bios.ts";
import { forwardBackwardJson, sampleJson } from "../server/tinker/render.ts";
import { failureJson } from "../server/errors.ts";
import { InvalidArgumentError } from "../runtime/errors.ts";

function op(msg: Record<string, unknown>): TrainerOp {
  return parseOrThrow(
    TrainerRequestSchema,
    { ...msg, runId: "run-1", seq: 3 },
    "",
  ) as TrainerOp;
}

/** What the gateway makes of the client's body for `req`. */
function roundTrip(req: TrainerOp): unknown {
  const { route, body } = trainerRequestWire(req);
  assert.equal(body.model_id, "run-1");
  assert.equal(body.seq_id, 3);
  const call = route === "forward" || route === "forward_backward"
    ? forwardBackwardCall(route, body)
    : route === "optim_step"
    ? optimStepCall(body)
    : route === "save_weights"
    ? saveWeightsCall(body)
    : route === "save_weights_for_sampler"
    ? saveForSamplerCall(body, 3).call
    : loadWeightsCall(body);
  return checkTrainerCall(call, "run-1", 3);
}

Deno.test("every training operation the client writes reads back as the same request", () => {
  const data = [{
    modelInput: { chunks: [{ type: "encoded_text", tokens: [1, 2, 3] }] },
    lossFnInputs: {
      targetTokens: Int32Array.from([2, 3, 4]),
      weights: [1, 0.5, 0],
    },
  }];
  for (
    const msg of [
      { type: "forward_backward", data, lossFn: "cross_entropy" },
      {
        type: "forward",
        data: [{
          ...data[0],
          lossFnInputs: {
            targetTokens: data[0].lossFnInputs.targetTokens,
            advantages: [1, 2, 3],
            logprobs: [-1, -2, -3],
          },
        }],
        lossFn: "ppo",
        lossFnConfig: { clipLowThreshold: 0.8 },
      },
      { type: "optim_step", adamParams: { learningRate: 0.01, beta2: 0.9 } },
      { type: "save_state", name: "a", overwrite: true },
      { type: "save_weights_for_sampler", name: "s", overwrite: true },
      { type: "load_state", path: "bios://run-0/weights/a", optimizer: true },
    ]
  ) {
    const req = op(msg);
    const back = roundTrip(req) as Record<string, unknown>;
    // Loss inputs arrive as TensorData under their wire keys: compare values.
    assert.deepEqual(
      JSON.parse(
        JSON.stringify(
          back,
          (_k, v) => ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v,
        ),
      ),
      JSON.parse(JSON.stringify(
        op(JSON.parse(JSON.stringify(roundTripShape(req)))),
        (_k, v) => ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v,
      )),
      msg.type,
    );
  }
});

/** `req` with each loss input as the TensorData the wire carries, camelCase keys. */
function roundTripShape(req: TrainerOp): Record<string, unknown> {
  const { runId: _r, seq: _s, ...rest } = req as TrainerOp & {
    runId: string;
    seq: number;
  };
  if (req.type !== "forward" && req.type !== "forward_backward") return rest;
  return {
    ...rest,
    data: req.data.map((d) => ({
      modelInput: d.modelInput,
      lossFnInputs: Object.fromEntries(
        Object.entries(d.lossFnInputs).map(([k, v]) => {
          const values = Array.from(v as ArrayLike<number>);
          return [k, {
            data: values,
            dtype: k === "targetTokens" ? "int64" : "float32",
            shape: [values.length],
          }];
        }),
      ),
    })),
  };
}

Deno.test("a result the gateway renders reads back as the same value", () => {
  const out = {
    lossFnOutputType: "cross_entropy",
    lossFnOutputs: [{
      logprobs: {
        data: Float32Array.from([-0.1, -2.5]),
        dtype: "float32" as const,
        shape: [2],
      },
    }],
    metrics: { "loss:sum": 2.6000000238418579 },
    loss: 2.6000000238418579,
  };
  assert.deepEqual(forwardBackwardFromJson(forwardBackwardJson(out)), out);
  const sample = {
    sequences: [{
      stopReason: "length" as const,
      tokens: [5, 6],
      logprobs: [-1, -2],
    }],
    promptLogprobs: [null, -0.5],
  };
  assert.deepEqual(sampleFromJson(sampleJson(sample)), sample);
  const body = sampleBody({
    type: "sample",
    prompt: { chunks: [{ type: "encoded_text", tokens: [1, 2] }] },
    numSamples: 2,
    samplingParams: {
      maxTokens: 4,
      temperature: 0.5,
      topK: -1,
      topP: 1,
      minP: 0,
      repetitionPenalty: 1,
    },
    includePromptLogprobs: true,
    topkPromptLogprobs: 0,
  });
  assert.equal(sampleCall(body).numSamples, 2);
  assert.equal(sampleCall(body).samplingParams.maxTokens, 4);
});

Deno.test("a failure carries the Bios error as raised, and the client rebuilds it", () => {
  const inner = new InvalidArgumentError(
    "data[0].lossFnInputs.targetTokens[1]",
    "data[0].lossFnInputs.targetTokens[1] must be a token id in [0, 258]: got 259",
  );
  const wire = new InvalidArgumentError(
    "forward_backward_input.data[0].loss_fn_inputs.target_tokens[1]",
    "renamed",
    { cause: inner },
  );
  const j = failureJson(wire);
  assert.equal(j.category, "user");
  const back = errorFromJson(j, 200);
  assert.ok(back instanceof InvalidArgumentError);
  assert.equal(back.field, inner.field);
  assert.equal(back.message, inner.message);
  // Without bios_error (a plain 400), the status picks the class.
  const plain = errorFromJson({ error: "bad", field: "seq_id" }, 400);
  assert.ok(plain instanceof InvalidArgumentError);
  assert.equal(plain.field, "seq_id");
});

Deno.test("an adapter folder on a node's disk does not cross the gateway", () => {
  assert.equal(wirePath("bios://r/weights/a", "path"), "tinker://r/weights/a");
  assert.throws(
    () => wirePath("/tmp/adapter", "path"),
    (e: unknown) => e instanceof InvalidArgumentError && e.field === "path",
  );
});
