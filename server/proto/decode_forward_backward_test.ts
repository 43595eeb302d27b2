import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { InvalidArgumentError } from "../../runtime/errors.ts";
import {
  decodeForwardBackwardRequest,
  MAX_DENSE_ELEMENTS,
} from "./decode_forward_backward.ts";
import { DType, ForwardBackwardRequestSchema } from "./schema.ts";
import { float32Bytes, int32Bytes, int64Bytes } from "./wire_arrays.ts";

type Init = Parameters<typeof create<typeof ForwardBackwardRequestSchema>>[1];

function body(init: Init): Uint8Array {
  return toBinary(
    ForwardBackwardRequestSchema,
    create(ForwardBackwardRequestSchema, init),
  );
}

function textChunk(tokens: number[]) {
  return {
    chunk: {
      case: "encodedText" as const,
      value: { tokens: int32Bytes(tokens) },
    },
  };
}

function dense(bytes: Uint8Array, dtype: number, shape?: number[]) {
  return {
    encoding: { case: "dense" as const, value: bytes },
    dtype,
    shape: (shape ?? []).map(BigInt),
  };
}

/** A well-formed request: two datums, a config, a sparse tensor. */
const GOOD: Init = {
  modelId: "run-1",
  seqId: 3,
  lossFn: "cross_entropy",
  lossFnConfig: { beta: 0.5 },
  data: [
    {
      modelInput: [textChunk([1, 2]), textChunk([3])],
      lossFnInputs: {
        "target_tokens": dense(int64Bytes([2, 3, 4]), DType.INT64, [3]),
        weights: dense(float32Bytes([1, 0.5, 0]), DType.FLOAT32, [3]),
      },
    },
    {
      modelInput: [textChunk([7, 8, 9, 10])],
      lossFnInputs: {
        "target_tokens": {
          encoding: {
            case: "sparseCsr",
            value: {
              values: int64Bytes([5, 6]),
              crowIndices: int64Bytes([0, 1, 2]),
              colIndices: int64Bytes([1, 0]),
            },
          },
          dtype: DType.INT64,
          shape: [2n, 2n],
        },
      },
    },
  ],
};

/** Decodes, and returns the InvalidArgumentError it throws (failing on any other outcome). */
function refusal(bytes: Uint8Array): InvalidArgumentError {
  try {
    decodeForwardBackwardRequest(bytes);
  } catch (e) {
    assert.ok(
      e instanceof InvalidArgumentError,
      `expected InvalidArgumentError, got ${e}`,
    );
    return e;
  }
  assert.fail("decoded without error");
}

/** Decodes; a refusal must be an InvalidArgumentError naming a field. */
function decodesOrRefuses(bytes: Uint8Array): void {
  try {
    decodeForwardBackwardRequest(bytes);
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) {
      throw new Error(
        `bytes [${bytes}] threw ${(e as Error)?.name}: ${
          (e as Error)?.message
        }`,
      );
    }
    assert.ok(e.field.length > 0 && e.message.startsWith(e.field));
  }
}

Deno.test("a well-formed request decodes to Bios values", () => {
  const req = decodeForwardBackwardRequest(body(GOOD));
  assert.equal(req.modelId, "run-1");
  assert.equal(req.seqId, 3);
  assert.equal(req.lossFn, "cross_entropy");
  assert.deepEqual(req.lossFnConfig, { beta: 0.5 });
  assert.equal(req.forwardOnly, false);
  assert.deepEqual(req.data[0].modelInput.chunks, [
    { type: "encoded_text", tokens: new Int32Array([1, 2]) },
    { type: "encoded_text", tokens: new Int32Array([3]) },
  ]);
  assert.deepEqual(req.data[0].lossFnInputs, {
    "target_tokens": {
      data: new Int32Array([2, 3, 4]),
      dtype: "int64",
      shape: [3],
    },
    weights: {
      data: new Float32Array([1, 0.5, 0]),
      dtype: "float32",
      shape: [3],
    },
  });
  assert.deepEqual(req.data[1].lossFnInputs["target_tokens"], {
    data: new Int32Array([0, 5, 6, 0]),
    dtype: "int64",
    shape: [2, 2],
  });
});

Deno.test("an empty body is an empty request; no config is undefined", () => {
  const req = decodeForwardBackwardRequest(new Uint8Array(0));
  assert.deepEqual(req, {
    modelId: "",
    seqId: 0,
    data: [],
    lossFn: "",
    lossFnConfig: undefined,
    forwardOnly: false,
  });
});

Deno.test("bfloat16 widens exactly to float32; int32 reads as int64", () => {
  const bf = new Uint8Array([0xc0, 0x3f, 0x10, 0xc0, 0x00, 0x80]); // 1.5, -2.25, -0
  const req = decodeForwardBackwardRequest(body({
    data: [{
      modelInput: [textChunk([1, 2, 3])],
      lossFnInputs: {
        weights: dense(bf, DType.BFLOAT16, [3]),
        "target_tokens": dense(int32Bytes([4, 5, 6]), DType.INT32, [3]),
      },
    }],
  }));
  const w = req.data[0].lossFnInputs.weights as { data: Float32Array };
  assert.deepEqual([...w.data], [1.5, -2.25, -0]);
  assert.ok(Object.is(w.data[2], -0));
  assert.deepEqual(req.data[0].lossFnInputs["target_tokens"], {
    data: new Int32Array([4, 5, 6]),
    dtype: "int64",
    shape: [3],
  });
});

Deno.test("faults name their field", () => {
  const cases: Array<[string, Init, string, RegExp]> = [
    [
      "float32 bytes not whole",
      {
        data: [{
          modelInput: [textChunk([1])],
          lossFnInputs: {
            weights: dense(new Uint8Array(7), DType.FLOAT32),
          },
        }],
      },
      "data[0].loss_fn_inputs.weights.dense",
      /float32 values \(4 bytes each\): got 7 bytes/,
    ],
    [
      "token bytes not whole",
      {
        data: [{
          modelInput: [{
            chunk: {
              case: "encodedText",
              value: { tokens: new Uint8Array(5) },
            },
          }],
        }],
      },
      "data[0].model_input[0].encoded_text.tokens",
      /int32/,
    ],
    [
      "int64 beyond int32",
      {
        data: [{
          modelInput: [textChunk([1, 2])],
          lossFnInputs: {
            "target_tokens": dense(int64Bytes([1, 2 ** 40]), DType.INT64),
          },
        }],
      },
      "data[0].loss_fn_inputs.target_tokens.dense[1]",
      /must fit in 32 bits.*got 1099511627776/,
    ],
    [
      "dtype unspecified",
      {
        data: [{
          modelInput: [textChunk([1])],
          lossFnInputs: { weights: dense(float32Bytes([1]), 0) },
        }],
      },
      "data[0].loss_fn_inputs.weights.dtype",
      /got 0/,
    ],
    [
      "unknown dtype",
      {
        data: [{
          modelInput: [textChunk([1])],
          lossFnInputs: { weights: dense(float32Bytes([1]), 9) },
        }],
      },
      "data[0].loss_fn_inputs.weights.dtype",
      /got 9/,
    ],
    [
      "shape mismatch",
      {
        data: [{
          modelInput: [textChunk([1])],
          lossFnInputs: {
            weights: dense(float32Bytes([1, 2]), DType.FLOAT32, [3]),
          },
        }],
      },
      "data[0].loss_fn_inputs.weights.shape",
      /multiply out to the number of values \(2\)/,
    ],
    [
      "negative dimension",
      {
        data: [{
          modelInput: [textChunk([1])],
          lossFnInputs: {
            weights: {
              ...dense(float32Bytes([1]), DType.FLOAT32),
              shape: [-1n],
            },
          },
        }],
      },
      "data[0].loss_fn_inputs.weights.shape[0]",
      /non-negative/,
    ],
    [
      "image chunk",
      {
        data: [{
          modelInput: [textChunk([1]), {
            chunk: {
              case: "image",
              value: { data: new Uint8Array([1]), format: "png" },
            },
          }],
        }],
      },
      "data[0].model_input[1].image",
      /image chunk: Bios trains text models only/,
    ],
    [
      "audio chunk",
      {
        data: [{
          modelInput: [{
            chunk: { case: "dmel", value: { dmel: new Uint8Array([1]) } },
          }],
        }],
      },
      "data[0].model_input[0].dmel",
      /audio/,
    ],
    [
      "empty chunk",
      { data: [{}, { modelInput: [{}] }] },
      "data[1].model_input[0]",
      /empty chunk/,
    ],
  ];
  for (const [what, init, field, message] of cases) {
    const e = refusal(body(init));
    assert.equal(e.field, field, what);
    assert.match(e.message, message, what);
  }
});

function sparse(
  values: Uint8Array,
  crow: number[],
  col: number[],
  shape: number[],
  dtype: number = DType.FLOAT32,
): Init {
  return {
    data: [{
      modelInput: [textChunk([1])],
      lossFnInputs: {
        weights: {
          encoding: {
            case: "sparseCsr",
            value: {
              values,
              crowIndices: int64Bytes(crow),
              colIndices: int64Bytes(col),
            },
          },
          dtype,
          shape: shape.map(BigInt),
        },
      },
    }],
  };
}

Deno.test("a sparse CSR tensor's indices are checked before it is densified", () => {
  const at = "data[0].loss_fn_inputs.weights";
  const v2 = float32Bytes([1, 2]);
  const cases: Array<[Init, string, RegExp]> = [
    [sparse(v2, [0, 2], [0, 1], [4]), `${at}.shape`, /two dimensions/],
    [
      sparse(v2, [0, 2], [0, 1], [1 << 13, 1 << 12]),
      `${at}.shape`,
      new RegExp(`at most ${MAX_DENSE_ELEMENTS}`),
    ],
    [
      sparse(v2, [0, 2], [0, 1], [2, 2]),
      `${at}.sparse_csr.crow_indices`,
      /rows \+ 1 = 3/,
    ],
    [
      sparse(v2, [0, 2], [0], [1, 2]),
      `${at}.sparse_csr.col_indices`,
      /one entry per value \(2\)/,
    ],
    [
      sparse(v2, [1, 2], [0, 1], [1, 2]),
      `${at}.sparse_csr.crow_indices[0]`,
      /must be 0/,
    ],
    [
      sparse(v2, [0, 1], [0, 1], [1, 2]),
      `${at}.sparse_csr.crow_indices[1]`,
      /number of values \(2\)/,
    ],
    [
      sparse(v2, [0, 2, 1, 2], [0, 1], [3, 2]),
      `${at}.sparse_csr.crow_indices[2]`,
      /must not decrease/,
    ],
    [
      sparse(v2, [0, 2], [0, 2], [1, 2]),
      `${at}.sparse_csr.col_indices[1]`,
      /column in \[0, 1\]/,
    ],
    [
      sparse(v2, [0, 2], [1, 1], [1, 2]),
      `${at}.sparse_csr.col_indices[1]`,
      /increase within a row/,
    ],
    [
      sparse(new Uint8Array(6), [0, 2], [0, 1], [1, 2]),
      `${at}.sparse_csr.values`,
      /6 bytes/,
    ],
  ];
  for (const [init, field, message] of cases) {
    const e = refusal(body(init));
    assert.equal(e.field, field);
    assert.match(e.message, message);
  }
  // An all-zero sparse tensor densifies to zeros.
  const ok = decodeForwardBackwardRequest(
    body(sparse(new Uint8Array(0), [0, 0, 0], [], [2, 3])),
  );
  assert.deepEqual(ok.data[0].lossFnInputs.weights, {
    data: new Float32Array(6),
    dtype: "float32",
    shape: [2, 3],
  });
});

Deno.test("malformed wire bytes name the field", () => {
  const cases: Array<[number[], string, RegExp]> = [
    // seq_id (2) sent as length-delimited
    [[0x12, 0x01, 0x00], "seq_id", /wire type 2.*expected 0/],
    // model_id (1) with invalid UTF-8
    [[0x0a, 0x02, 0xc3, 0x28], "model_id", /UTF-8/],
    // model_id declares 5 bytes, 1 follows
    [[0x0a, 0x05, 0x61], "model_id", /declares 5 bytes, 1 remain/],
    // a varint cut off in forward_only (6)
    [[0x30, 0x80], "forward_only", /cut off/],
    // field number 0
    [[0x00, 0x00], "body", /field number 0/],
    // a group wire type (3)
    [[0x0b], "body", /wire type 3/],
    // an eleven-byte varint in seq_id
    [[0x10, ...new Array(10).fill(0xff), 0x01], "seq_id", /ten bytes/],
    // loss_fn_config entry whose value (double) is cut off
    [
      [0x2a, 0x06, 0x0a, 0x01, 0x62, 0x11, 0x00, 0x00],
      "loss_fn_config.b",
      /8 bytes needed, 2 remain/,
    ],
  ];
  for (const [bytes, field, message] of cases) {
    const e = refusal(new Uint8Array(bytes));
    assert.equal(e.field, field, `[${bytes}]`);
    assert.match(e.message, message, `[${bytes}]`);
  }
});

Deno.test("a cut inside a nested tensor names the innermost field", () => {
  const good = body({
    data: [{
      modelInput: [textChunk([1, 2, 3, 4])],
      lossFnInputs: {
        weights: dense(float32Bytes([1, 2, 3, 4]), DType.FLOAT32, [4]),
      },
    }],
  });
  // The body ends with the shape (field 4, one varint): cut into the dense bytes.
  const e = refusal(good.subarray(0, good.length - 6));
  assert.equal(e.field, "data[0].loss_fn_inputs.weights.dense");
  assert.match(e.message, /is truncated: it declares 16 bytes/);
});

Deno.test("unknown fields are skipped, as proto3 keeps them", () => {
  const good = body(GOOD);
  const extra = new Uint8Array([
    ...good,
    0xf8,
    0x01,
    0x05,
    0x82,
    0x02,
    0x01,
    0x00,
  ]);
  assert.deepEqual(
    decodeForwardBackwardRequest(extra),
    decodeForwardBackwardRequest(good),
  );
});

Deno.test("a zstd-compressed body is refused with the reason", () => {
  const e = refusal(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0]));
  assert.equal(e.field, "body");
  assert.match(e.message, /zstd-compressed.*proto_compress_fwdbwd: false/);
});

Deno.test("a __proto__ key stays a loss-input key and pollutes nothing", () => {
  // Encode with a placeholder key of the same length, then rename it.
  const bytes = body({
    data: [{
      modelInput: [textChunk([1])],
      lossFnInputs: { "XXXXXXXXX": dense(float32Bytes([1]), DType.FLOAT32) },
    }],
  });
  const key = new TextEncoder().encode("XXXXXXXXX");
  const at = bytes.findIndex((_, i) => key.every((k, j) => bytes[i + j] === k));
  bytes.set(new TextEncoder().encode("__proto__"), at);
  const req = decodeForwardBackwardRequest(bytes);
  const inputs = req.data[0].lossFnInputs;
  assert.ok(Object.hasOwn(inputs, "__proto__"));
  assert.equal(Object.getPrototypeOf(inputs), Object.prototype);
  assert.equal(({} as Record<string, unknown>).dtype, undefined);
});

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("every truncation of a request decodes or is refused cleanly", () => {
  const good = body(GOOD);
  for (let n = 0; n < good.length; n++) decodesOrRefuses(good.subarray(0, n));
});

Deno.test("flipped bytes and garbage decode or are refused cleanly, quickly", () => {
  const good = body(GOOD);
  const next = rng(11);
  const start = performance.now();
  for (let i = 0; i < 3000; i++) {
    const b = good.slice();
    const flips = 1 + Math.floor(next() * 4);
    for (let j = 0; j < flips; j++) {
      b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
    }
    decodesOrRefuses(b);
  }
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(Math.floor(next() * 64));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(next() * 256);
    decodesOrRefuses(b);
  }
  // Garbage with a plausible header: a huge declared length, deep nesting.
  decodesOrRefuses(new Uint8Array([0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
  decodesOrRefuses(new Uint8Array(new Array(200).fill(0x1a)));
  assert.ok(performance.now() - start < 20_000, "fuzzing took too long");
});
