import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../runtime/errors.ts";
import {
  checkTrainerCall,
  forwardBackwardCall,
  loadWeightsCall,
  sampleCall,
  saveForSamplerCall,
  toWireText,
} from "./to_bios.ts";
import { toBiosPath } from "../../protocol/tinker/paths.ts";

const datum = (inputs: Record<string, unknown>) => ({
  "model_input": { chunks: [{ type: "encoded_text", tokens: [1, 2, 3] }] },
  "loss_fn_inputs": inputs,
});

Deno.test("a wire forward_backward becomes the trainer's request; sparse CSR is densified", () => {
  const call = forwardBackwardCall("forward_backward", {
    "forward_backward_input": {
      data: [datum({
        "target_tokens": { data: [2, 3, 4], dtype: "int64", shape: [3] },
        weights: {
          data: [1, 1],
          dtype: "float32",
          shape: [1, 3],
          "sparse_crow_indices": [0, 2],
          "sparse_col_indices": [0, 2],
        },
      })],
      "loss_fn": "cross_entropy",
    },
  });
  const d = (call.data as { lossFnInputs: Record<string, unknown> }[])[0];
  assert.deepEqual(d.lossFnInputs.weights, {
    data: [1, 0, 1],
    dtype: "float32",
    shape: [1, 3],
  });
  // Bios's losses take one value per token: a 2-D input is refused by name.
  assert.throws(
    () => checkTrainerCall(call, "run-1", 1),
    /^InvalidArgumentError: forward_backward_input\.data\[0\]\.loss_fn_inputs\.weights\.shape must be one-dimensional/,
  );
});

Deno.test("refusals name the wire's fields", () => {
  const call = forwardBackwardCall("forward", {
    "forward_input": {
      data: [datum({ "target_tokens": [1, 2] })],
      "loss_fn": "cross_entropy",
    },
  });
  assert.throws(() => checkTrainerCall(call, "run-1", 1), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError);
    assert.equal(e.field, "forward_input.data[0].loss_fn_inputs.target_tokens");
    assert.match(
      e.message,
      /^forward_input\.data\[0\]\.loss_fn_inputs\.target_tokens must have one value per model-input token/,
    );
    return true;
  });
  assert.throws(
    () => forwardBackwardCall("forward_backward", {}),
    /forward_backward_input is required/,
  );
  assert.throws(
    () =>
      sampleCall({
        prompt: { chunks: [] },
        "sampling_params": { "max_tokens": 4 },
      }),
    (e: unknown) => e instanceof InvalidArgumentError && e.field === "prompt",
  );
  assert.throws(
    () =>
      sampleCall({
        prompt: { chunks: [{ type: "encoded_text", tokens: [1] }] },
        "sampling_params": { "top_p": 2, "max_tokens": 1 },
      }),
    /sampling_params\.top_p must be in \(0, 1\]: got 2/,
  );
  assert.throws(
    () => saveForSamplerCall({ "ttl_seconds": 60, path: "x" }, 3),
    /ttl_seconds is not supported/,
  );
  assert.throws(
    () => loadWeightsCall({ path: "/etc/passwd", optimizer: false }),
    /path must be tinker:\/\//,
  );
  assert.equal(
    toWireText("bios://r/weights/x: lossFnInputs.targetTokens"),
    "tinker://r/weights/x: loss_fn_inputs.target_tokens",
  );
});

Deno.test("an ephemeral save is a sampler save named by its seq", () => {
  assert.deepEqual(saveForSamplerCall({ "sampling_session_seq_id": 2 }, 7), {
    call: {
      type: "save_weights_for_sampler",
      name: "ephemeral-7",
      overwrite: true,
    },
    samplingSessionSeqId: 2,
  });
  assert.throws(
    () => saveForSamplerCall({}, 7),
    /sampling_session_seq_id is required without a path/,
  );
  assert.throws(
    () => toBiosPath("tinker://run-1/weights/a/b", "path"),
    /path must be tinker:\/\/<run>\/weights\/<name>/,
  );
});
