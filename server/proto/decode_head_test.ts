import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { readForwardBackwardHead } from "./decode_head.ts";
import { ForwardBackwardRequestSchema } from "./schema.ts";

Deno.test("readForwardBackwardHead reads what the full message holds", () => {
  const bytes = toBinary(
    ForwardBackwardRequestSchema,
    create(ForwardBackwardRequestSchema, {
      modelId: "run-7f3a",
      seqId: 12,
      lossFn: "cross_entropy",
      lossFnConfig: { "clip_low_threshold": 0.5 },
      forwardOnly: true,
      data: [{
        modelInput: [{
          chunk: {
            case: "encodedText",
            value: { tokens: new Uint8Array(new Int32Array([1, 2]).buffer) },
          },
        }],
      }],
    }),
  );
  assert.deepEqual(readForwardBackwardHead(bytes), {
    modelId: "run-7f3a",
    seqId: 12,
    forwardOnly: true,
  });
  // One byte short (inside its last field): not a message.
  assert.equal(readForwardBackwardHead(bytes.slice(0, bytes.length - 1)), null);
});

Deno.test("readForwardBackwardHead: defaults, last wins, foreign wire types skipped", () => {
  assert.deepEqual(readForwardBackwardHead(new Uint8Array(0)), {
    modelId: "",
    seqId: 0,
    forwardOnly: false,
  });
  // model_id "a", seq_id 1, model_id "b", seq_id 2
  assert.deepEqual(
    readForwardBackwardHead(
      new Uint8Array([10, 1, 97, 16, 1, 10, 1, 98, 16, 2]),
    ),
    { modelId: "b", seqId: 2, forwardOnly: false },
  );
  // field 2 as a 32-bit value, field 99 as a varint: neither is the head's
  assert.deepEqual(
    readForwardBackwardHead(
      new Uint8Array([21, 7, 0, 0, 0, 152, 6, 5, 16, 3]),
    ),
    { modelId: "", seqId: 3, forwardOnly: false },
  );
});

Deno.test("readForwardBackwardHead refuses bytes whose top level is broken", () => {
  for (
    const bad of [
      [0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00], // a zstd frame
      [10, 200], // a length cut off
      [16, 0x80, 0x80], // a varint cut off
      [10, 2, 0xc3, 0x28], // model_id not UTF-8
      [0x0f], // wire type 7
    ]
  ) {
    assert.equal(
      readForwardBackwardHead(new Uint8Array(bad)),
      null,
      JSON.stringify(bad),
    );
  }
});
