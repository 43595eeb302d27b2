import assert from "node:assert/strict";
import { fromBinary } from "@bufbuild/protobuf";
import { encodeForwardBackwardOutput } from "./encode_forward_backward.ts";
import { encodeSampleResponse, TOPK_MASK_LOGPROB } from "./encode_sample.ts";
import {
  DType,
  ForwardBackwardOutputSchema,
  SampleResponseSchema,
  StopReason,
} from "./schema.ts";
import { readFloat32s, readInt32s, readInt64s } from "./wire_arrays.ts";

Deno.test("datums share a record until a dtype or trailing shape changes", () => {
  const bytes = encodeForwardBackwardOutput({
    lossFnOutputType: "ArrayRecord",
    lossFnOutputs: [
      { x: { data: [1, 2, 3, 4], dtype: "float32", shape: [2, 2] } },
      { x: { data: [5, 6], dtype: "float32", shape: [1, 2] } },
      { x: { data: [7, 8, 9], dtype: "float32", shape: [1, 3] } },
      { x: { data: [10], dtype: "int64" } },
    ],
    metrics: { "loss:sum": 1 },
    loss: 1,
  });
  const msg = fromBinary(ForwardBackwardOutputSchema, bytes);
  assert.deepEqual(
    msg.lossFnOutputs.map((r) => [
      r.typeTag,
      r.numDatums,
      r.fields.x.dtype,
      r.fields.x.trailingShape,
      [...readInt64s(r.fields.x.offsets, "offsets")],
    ]),
    [
      ["ArrayRecord", 2n, DType.FLOAT32, [2n], [0n, 16n, 24n]],
      ["ArrayRecord", 1n, DType.FLOAT32, [3n], [0n, 12n]],
      ["ArrayRecord", 1n, DType.INT64, [], [0n, 8n]],
    ],
  );
  assert.deepEqual(
    readFloat32s(msg.lossFnOutputs[0].fields.x.data, "data"),
    new Float32Array([1, 2, 3, 4, 5, 6]),
  );
  assert.deepEqual(msg.metrics, { "loss:sum": 1 });
});

Deno.test("outputs the SDK could not line up are refused", () => {
  const base = { lossFnOutputType: "ArrayRecord", metrics: {}, loss: 0 };
  assert.throws(
    () =>
      encodeForwardBackwardOutput({
        ...base,
        lossFnOutputs: [
          { a: { data: [1], dtype: "float32" } },
          { b: { data: [1], dtype: "float32" } },
        ],
      }),
    /lossFnOutputs\[1\] has fields \[b\].*same fields/,
  );
  assert.throws(
    () =>
      encodeForwardBackwardOutput({
        ...base,
        lossFnOutputs: [{ a: { data: [1, 2], dtype: "float32", shape: [3] } }],
      }),
    /shape \[3\] does not multiply out/,
  );
  assert.throws(
    () =>
      encodeForwardBackwardOutput({
        ...base,
        lossFnOutputs: [{ a: { data: [2 ** 60], dtype: "int64" } }],
      }),
    /not a safe integer/,
  );
});

Deno.test("a sample reply: enum, int32 tokens, NaN prompt logprobs, padded top-k", () => {
  const msg = fromBinary(
    SampleResponseSchema,
    encodeSampleResponse({
      sequences: [
        { stopReason: "stop", tokens: [3, 4], logprobs: [-1, -2] },
        { stopReason: "length", tokens: [5], logprobs: [-3] },
      ],
      promptLogprobs: [null, -0.5],
      topkPromptLogprobs: [null, [[9, -0.5], [2, -1]]],
    }),
  );
  assert.deepEqual(msg.sequences.map((s) => s.stopReason), [
    StopReason.STOP,
    StopReason.LENGTH,
  ]);
  assert.deepEqual(
    readInt32s(msg.sequences[0].tokens, "tokens"),
    new Int32Array([3, 4]),
  );
  const p = readFloat32s(msg.promptLogprobs!, "p");
  assert.ok(Number.isNaN(p[0]) && p[1] === -0.5);
  const topk = msg.topkPromptLogprobs!;
  assert.equal(topk.k, 2);
  assert.equal(topk.promptLength, 2);
  assert.deepEqual(
    readInt32s(topk.tokenIds, "ids"),
    new Int32Array([0, 0, 9, 2]),
  );
  assert.deepEqual(
    readFloat32s(topk.logprobs, "lps"),
    new Float32Array([TOPK_MASK_LOGPROB, TOPK_MASK_LOGPROB, -0.5, -1]),
  );
  // Absent fields stay absent.
  const plain = fromBinary(
    SampleResponseSchema,
    encodeSampleResponse({ sequences: [] }),
  );
  assert.equal(plain.promptLogprobs, undefined);
  assert.equal(plain.topkPromptLogprobs, undefined);
});

Deno.test("a sample reply with a token outside int32 or an unknown stop reason is refused", () => {
  assert.throws(
    () =>
      encodeSampleResponse({
        sequences: [{ stopReason: "stop", tokens: [2 ** 31], logprobs: [0] }],
      }),
    /sequences\[0\]\.tokens\[0\]: 2147483648 is not an int32/,
  );
  assert.throws(
    () =>
      encodeSampleResponse({
        sequences: [{
          stopReason: "eos" as "stop",
          tokens: [1],
          logprobs: [0],
        }],
      }),
    /stopReason: eos/,
  );
});
