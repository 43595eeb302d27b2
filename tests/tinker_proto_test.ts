/**
 * Byte-level agreement of server/proto with the official Tinker SDK 0.25:
 * the SDK's own conversion code (tests/tinker_proto_sdk.py) serializes
 * forward_backward requests that Bios decodes, and parses the
 * ForwardBackwardOutput and SampleResponse bytes Bios encodes; the schema
 * written in server/proto/schema.ts is compared with the SDK's descriptor.
 */

import assert from "node:assert/strict";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { JsonValue } from "@bufbuild/protobuf";
import {
  type DecodedForwardBackwardRequest,
  decodeForwardBackwardRequest,
  encodeForwardBackwardOutput,
  encodeSampleResponse,
} from "../server/proto/mod.ts";
import { TINKER_PUBLIC_FILE } from "../server/proto/schema.ts";
import { InvalidArgumentError } from "../runtime/errors.ts";
import { TrainerRequestSchema } from "../protocol/messages.ts";
import type {
  ForwardBackwardOutput,
  SampleResponse,
} from "../protocol/types/responses.ts";
import type { TensorData } from "../protocol/types/tensor_data.ts";
import { runTinkerSdk, tinkerSdkForTests } from "./_tinker_sdk_python.ts";

const SDK = "0.25.0";
const sdk = await tinkerSdkForTests("Tinker SDK protobuf interop tests", SDK);

// ---- The requests the SDK builds (its own types → its own serializer) ----

type InputSpec =
  | { kind: "list"; values: number[] }
  | { kind: "numpy"; values: number[]; np_dtype: string; shape: number[] }
  | {
    kind: "sparse";
    values: number[];
    dtype: "int64" | "float32";
    shape: number[];
    crow: number[];
    col: number[];
  }
  | { kind: "raw"; dtype: "bfloat16" | "int32"; values: number[] };

interface RequestSpec {
  raw?: boolean;
  "model_id": string;
  "seq_id": number;
  "loss_fn": string;
  "loss_fn_config"?: Record<string, number>;
  "forward_only"?: boolean;
  data: Array<{
    chunks: Array<{ tokens?: number[]; image?: number[] }>;
    inputs: Record<string, InputSpec>;
  }>;
}

const REQUESTS: Record<string, RequestSpec> = {
  main: {
    "model_id": "run-7f3a",
    "seq_id": 7,
    "loss_fn": "ppo",
    "loss_fn_config": {
      "clip_low_threshold": 0.75,
      "clip_high_threshold": 1.25,
    },
    "forward_only": false,
    data: [
      {
        chunks: [{ tokens: [1, 2, 3] }, { tokens: [4, 5] }],
        inputs: {
          "target_tokens": { kind: "list", values: [2, 3, 4, 5, 151643] },
          logprobs: {
            kind: "numpy",
            values: [-0.1, -0.2, -3.75, -1e-7, -20],
            "np_dtype": "float32",
            shape: [5],
          },
          advantages: { kind: "list", values: [1, 1, -0.5, 0.3333, 0] },
        },
      },
      {
        chunks: [{ tokens: [100000, 7, 2147483647] }],
        inputs: {
          "target_tokens": {
            kind: "numpy",
            values: [7, 2147483647, 0],
            "np_dtype": "int64",
            shape: [3],
          },
          logprobs: { kind: "list", values: [-1, -2, -3] },
          advantages: { kind: "list", values: [0.1, 0.2, 0.3] },
        },
      },
      {
        chunks: [{ tokens: [9, 8, 7, 6] }],
        inputs: {
          "target_tokens": {
            kind: "sparse",
            values: [5, 6],
            dtype: "int64",
            shape: [2, 2],
            crow: [0, 1, 2],
            col: [1, 0],
          },
          logprobs: {
            kind: "sparse",
            values: [-1.5, -0.25],
            dtype: "float32",
            shape: [1, 4],
            crow: [0, 2],
            col: [0, 3],
          },
          advantages: { kind: "list", values: [1, 2, 3, 4] },
        },
      },
    ],
  },
  forward: {
    "model_id": "run-7f3a",
    "seq_id": 8,
    "loss_fn": "cross_entropy",
    "forward_only": true,
    data: [{
      chunks: [{ tokens: [11, 12, 13] }],
      inputs: {
        "target_tokens": { kind: "list", values: [12, 13, 14] },
        weights: { kind: "list", values: [0, 1, 0.1] },
      },
    }],
  },
  widths: {
    raw: true,
    "model_id": "m",
    "seq_id": 1,
    "loss_fn": "cross_entropy",
    data: [{
      chunks: [{ tokens: [1, 2, 3, 4] }],
      inputs: {
        "target_tokens": { kind: "raw", dtype: "int32", values: [2, 3, 4, 5] },
        weights: {
          kind: "raw",
          dtype: "bfloat16",
          values: [1.5, -2.25, 0.0078125, 3.3895313892515355e38],
        },
      },
    }],
  },
  image: {
    "model_id": "m",
    "seq_id": 2,
    "loss_fn": "cross_entropy",
    "forward_only": false,
    data: [{
      chunks: [{ tokens: [1] }, { image: [0x89, 0x50, 0x4e, 0x47] }],
      inputs: {},
    }],
  },
  "int64_overflow": {
    "model_id": "m",
    "seq_id": 3,
    "loss_fn": "cross_entropy",
    "forward_only": false,
    data: [{
      chunks: [{ tokens: [1, 2] }],
      inputs: {
        "target_tokens": {
          kind: "numpy",
          values: [1, 2 ** 40],
          "np_dtype": "int64",
          shape: [2],
        },
      },
    }],
  },
};

/** The dtype the SDK gives a loss input, by its key (tinker/types/datum.py). */
function keyDtype(key: string): "int64" | "float32" {
  return key === "target_tokens" ? "int64" : "float32";
}

/** What Bios should decode an input spec to, computed directly from the spec. */
function expectedTensor(key: string, s: InputSpec): TensorData {
  const typed = (dtype: string, v: number[]) =>
    dtype === "int64" || dtype === "int32"
      ? new Int32Array(v)
      : new Float32Array(v);
  switch (s.kind) {
    case "list":
      return {
        data: typed(keyDtype(key), s.values),
        dtype: keyDtype(key),
        shape: [s.values.length],
      };
    case "numpy":
      return {
        data: typed(s.np_dtype, s.values),
        dtype: s.np_dtype === "int64" ? "int64" : "float32",
        shape: s.shape,
      };
    case "sparse": {
      const [rows, cols] = s.shape;
      const dense = new Array(rows * cols).fill(0);
      for (let r = 0; r < rows; r++) {
        for (let j = s.crow[r]; j < s.crow[r + 1]; j++) {
          dense[r * cols + s.col[j]] = s.values[j];
        }
      }
      return { data: typed(s.dtype, dense), dtype: s.dtype, shape: s.shape };
    }
    case "raw":
      return {
        data: typed(s.dtype, s.values),
        dtype: s.dtype === "int32" ? "int64" : "float32",
        shape: [s.values.length],
      };
  }
}

// ---- The results Bios encodes for the SDK to parse ----

const FBO: Record<string, ForwardBackwardOutput> = {
  "fbo_main": {
    lossFnOutputType: "ArrayRecord",
    lossFnOutputs: [
      { logprobs: { data: [-0.5, -1.2345678, -30], dtype: "float32" } },
      {
        logprobs: {
          data: new Float32Array([-0.1]),
          dtype: "float32",
          shape: [1],
        },
      },
      { logprobs: { data: [], dtype: "float32", shape: [0] } },
      {
        logprobs: {
          data: [NaN, -Infinity, -1e-30, 0],
          dtype: "float32",
          shape: [4],
        },
      },
    ],
    metrics: { "loss:sum": 3.5, "weird:mean": NaN, "big:max": Infinity },
    loss: 3.5,
  },
  // Two fields; datum 2 changes a trailing shape, so it needs a second record.
  "fbo_records": {
    lossFnOutputType: "ArrayRecord",
    lossFnOutputs: [
      {
        logprobs: { data: [-1, -2], dtype: "float32", shape: [2] },
        counts: { data: [1, 2, 3, 4], dtype: "int64", shape: [2, 2] },
      },
      {
        logprobs: { data: [-3], dtype: "float32", shape: [1] },
        counts: {
          data: new Int32Array([5, 6, -7, 2 ** 31 - 1, 0, 9]),
          dtype: "int64",
          shape: [3, 2],
        },
      },
      {
        logprobs: { data: [-4, -5, -6], dtype: "float32", shape: [3] },
        counts: { data: [2 ** 40, 1, 2], dtype: "int64", shape: [1, 3] },
      },
    ],
    metrics: { "loss:sum": 0.25 },
    loss: 0.25,
  },
  "fbo_empty": {
    lossFnOutputType: "ArrayRecord",
    lossFnOutputs: [],
    metrics: { "loss:sum": 0 },
    loss: 0,
  },
};

const SAMPLES: Record<string, SampleResponse> = {
  "sample_main": {
    sequences: [
      { stopReason: "stop", tokens: [1, 2, 3], logprobs: [-0.1, -0.2, -0.3] },
      {
        stopReason: "length",
        tokens: [2147483647, 0],
        logprobs: [-1e-8, -50],
      },
    ],
    promptLogprobs: [null, -1.5, -2.2345],
    topkPromptLogprobs: [null, [[5, -0.5], [6, -1.5]], [[7, -0.25]]],
  },
  "sample_plain": {
    sequences: [{ stopReason: "length", tokens: [], logprobs: [] }],
  },
  "sample_topk_null": {
    sequences: [{ stopReason: "stop", tokens: [4], logprobs: [-0.7] }],
    promptLogprobs: [null],
    topkPromptLogprobs: [null],
  },
};

// ---- What the SDK prints ----

type Num = number | string;
interface SdkTensor {
  dtype: string;
  shape: number[];
  data: Num[];
}
interface SdkFbo {
  error?: string;
  "loss_fn_output_type": string;
  "loss_fn_outputs": Array<Record<string, SdkTensor>>;
  metrics: Record<string, Num>;
}
interface SdkSample {
  error?: string;
  sequences: Array<{
    "stop_reason": string;
    tokens: number[];
    "tokens_dtype": string;
    logprobs: Num[] | null;
  }>;
  "prompt_logprobs": Array<Num | null> | null;
  "topk_prompt_logprobs": Array<Array<[number, Num]> | null> | null;
  "topk_shape": number[] | null;
  "prompt_cache_hit_tokens": number;
}
interface SdkOut {
  "request_errors": Record<string, string>;
  responses: Record<string, SdkFbo | SdkSample>;
  descriptor: JsonValue;
}

/** A number the script printed: non-finite ones come as strings. */
function num(v: Num): number {
  if (typeof v === "number") return v;
  return v === "NaN" ? NaN : v === "Infinity" ? Infinity : -Infinity;
}

/** A float as float32 would hold it. */
const f32 = (v: number) => Math.fround(v);

function sameNumbers(got: Num[], want: number[], what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  got.forEach((g, i) =>
    assert.ok(
      Object.is(num(g), want[i]),
      `${what}[${i}]: SDK read ${g}, Bios sent ${want[i]}`,
    )
  );
}

let work: string;
let out: SdkOut;

async function runSdk(): Promise<SdkOut> {
  assert.equal(sdk.missing, null, sdk.missing ?? "");
  work = await Deno.makeTempDir({ prefix: "bios_tinker_proto_" });
  const responses: Record<string, { file: string; kind: string }> = {};
  for (const [name, r] of Object.entries(FBO)) {
    await Deno.writeFile(
      `${work}/${name}.pb`,
      encodeForwardBackwardOutput(r),
    );
    responses[name] = { file: `${name}.pb`, kind: "fbo" };
  }
  for (const [name, r] of Object.entries(SAMPLES)) {
    await Deno.writeFile(`${work}/${name}.pb`, encodeSampleResponse(r));
    responses[name] = { file: `${name}.pb`, kind: "sample" };
  }
  await Deno.writeTextFile(
    `${work}/spec.json`,
    JSON.stringify({ requests: REQUESTS, responses }),
  );
  return await runTinkerSdk<SdkOut>(SDK, "tinker_proto_sdk.py", [work]);
}

Deno.test({
  name: "Tinker SDK 0.25 protobuf wire agrees with server/proto",
  ignore: sdk.ignore,
  async fn(t) {
    out = await runSdk();
    try {
      assert.deepEqual(out.request_errors, {});

      await t.step("the schema matches the SDK's descriptor", () => {
        const sdkFile = out.descriptor as {
          messageType: Array<{ name: string }>;
          enumType: Array<{ name: string }>;
          package: string;
          syntax: string;
        };
        // Both in canonical proto3 JSON (defaults left out).
        const ours = toJson(
          FileDescriptorProtoSchema,
          fromJson(FileDescriptorProtoSchema, TINKER_PUBLIC_FILE as JsonValue),
        ) as typeof sdkFile;
        assert.equal(ours.package, sdkFile.package);
        assert.equal(ours.syntax, sdkFile.syntax);
        for (const m of ours.messageType) {
          const theirs = sdkFile.messageType.find((x) => x.name === m.name);
          assert.deepEqual(m, theirs, `message ${m.name}`);
        }
        assert.deepEqual(ours.enumType, sdkFile.enumType);
        // Every SDK message is written here except the sampling request's.
        assert.deepEqual(
          sdkFile.messageType.map((m) => m.name).filter((n) =>
            !ours.messageType.some((m) => m.name === n)
          ),
          ["SamplingParams", "StopStrings", "StopTokens"],
        );
      });

      await t.step(
        "requests the SDK serializes decode value for value",
        async () => {
          for (const name of ["main", "forward", "widths"]) {
            const spec = REQUESTS[name];
            const req = decodeForwardBackwardRequest(
              await Deno.readFile(`${work}/${name}.bin`),
            );
            assert.equal(req.modelId, spec.model_id, name);
            assert.equal(req.seqId, spec.seq_id, name);
            assert.equal(req.lossFn, spec.loss_fn, name);
            assert.deepEqual(req.lossFnConfig, spec.loss_fn_config, name);
            assert.equal(req.forwardOnly, spec.forward_only ?? false, name);
            assert.equal(req.data.length, spec.data.length, name);
            spec.data.forEach((d, i) => {
              assert.deepEqual(
                req.data[i].modelInput.chunks,
                d.chunks.map((c) => ({
                  type: "encoded_text",
                  tokens: new Int32Array(c.tokens!),
                })),
                `${name} data[${i}] tokens`,
              );
              assert.deepEqual(
                Object.keys(req.data[i].lossFnInputs).sort(),
                Object.keys(d.inputs).sort(),
              );
              for (const [k, s] of Object.entries(d.inputs)) {
                assert.deepEqual(
                  req.data[i].lossFnInputs[k],
                  expectedTensor(k, s),
                  `${name} data[${i}].${k}`,
                );
              }
            });
          }
          // The decoded request is the trainer's call as it stands: Bios's
          // own schema takes it (keys and config renamed to camelCase).
          const call = (r: DecodedForwardBackwardRequest, data = r.data) =>
            TrainerRequestSchema.parse({
              type: r.forwardOnly ? "forward" : "forward_backward",
              runId: "run-1",
              seq: r.seqId,
              data,
              lossFn: r.lossFn,
              lossFnConfig: r.lossFnConfig,
            });
          const fwd = call(decodeForwardBackwardRequest(
            await Deno.readFile(`${work}/forward.bin`),
          ));
          assert.equal(fwd.type, "forward");
          assert.deepEqual(fwd.data[0].lossFnInputs, {
            targetTokens: {
              data: new Int32Array([12, 13, 14]),
              dtype: "int64",
              shape: [3],
            },
            weights: {
              data: new Float32Array([0, 1, f32(0.1)]),
              dtype: "float32",
              shape: [3],
            },
          });
          const main = decodeForwardBackwardRequest(
            await Deno.readFile(`${work}/main.bin`),
          );
          // (datum 2's sparse inputs are 2-D, which Bios's losses refuse)
          const mainCall = call(main, main.data.slice(0, 2));
          assert.equal(mainCall.type, "forward_backward");
          assert.ok("lossFnConfig" in mainCall);
          assert.deepEqual(mainCall.lossFnConfig, {
            clipLowThreshold: 0.75,
            clipHighThreshold: 1.25,
          });
          assert.throws(() => call(main), /one-dimensional/);
        },
      );

      await t.step(
        "what Bios cannot take is refused, naming the field",
        async () => {
          const refusal = async (name: string) => {
            try {
              decodeForwardBackwardRequest(
                await Deno.readFile(`${work}/${name}.bin`),
              );
            } catch (e) {
              assert.ok(e instanceof InvalidArgumentError, String(e));
              return e;
            }
            assert.fail(`${name} decoded`);
          };
          const image = await refusal("image");
          assert.equal(image.field, "data[0].model_input[1].image");
          assert.match(image.message, /Bios trains text models only/);
          const big = await refusal("int64_overflow");
          assert.equal(
            big.field,
            "data[0].loss_fn_inputs.target_tokens.dense[1]",
          );
          assert.match(big.message, /must fit in 32 bits.*got 1099511627776/);
        },
      );

      await t.step("the SDK reads Bios's ForwardBackwardOutput back", () => {
        for (const [name, sent] of Object.entries(FBO)) {
          const got = out.responses[name] as SdkFbo;
          assert.equal(got.error, undefined, `${name}: ${got.error}`);
          assert.equal(got.loss_fn_output_type, sent.lossFnOutputType);
          assert.equal(got.loss_fn_outputs.length, sent.lossFnOutputs.length);
          sent.lossFnOutputs.forEach((o, i) => {
            assert.deepEqual(
              Object.keys(got.loss_fn_outputs[i]).sort(),
              Object.keys(o).sort(),
            );
            for (const [k, td] of Object.entries(o)) {
              const g = got.loss_fn_outputs[i][k];
              const what = `${name}[${i}].${k}`;
              assert.equal(g.dtype, td.dtype, what);
              assert.deepEqual(g.shape, td.shape ?? [td.data.length], what);
              sameNumbers(
                g.data,
                Array.from(td.data, td.dtype === "float32" ? f32 : Number),
                what,
              );
            }
          });
          assert.deepEqual(
            Object.keys(got.metrics).sort(),
            Object.keys(sent.metrics).sort(),
          );
          for (const [k, v] of Object.entries(sent.metrics)) {
            assert.ok(Object.is(num(got.metrics[k]), v), `${name} ${k}`);
          }
        }
      });

      await t.step("the SDK reads Bios's SampleResponse back", () => {
        for (const [name, sent] of Object.entries(SAMPLES)) {
          const got = out.responses[name] as SdkSample;
          assert.equal(got.error, undefined, `${name}: ${got.error}`);
          assert.equal(got.sequences.length, sent.sequences.length);
          sent.sequences.forEach((s, i) => {
            const g = got.sequences[i];
            assert.equal(g.stop_reason, s.stopReason);
            assert.deepEqual(g.tokens, s.tokens);
            assert.equal(g.tokens_dtype, "int32");
            // The SDK reads empty logprobs bytes as "not requested".
            if (s.logprobs.length === 0) assert.equal(g.logprobs, null);
            else sameNumbers(g.logprobs!, s.logprobs.map(f32), `${name} lp`);
          });
          if (sent.promptLogprobs === undefined) {
            assert.equal(got.prompt_logprobs, null);
          } else {
            assert.deepEqual(
              got.prompt_logprobs!.map((v) => v === null ? null : num(v)),
              sent.promptLogprobs.map((v) => v === null ? null : f32(v)),
            );
          }
          if (sent.topkPromptLogprobs === undefined) {
            assert.equal(got.topk_prompt_logprobs, null);
            assert.equal(got.topk_shape, null);
          } else {
            const rows = sent.topkPromptLogprobs;
            assert.deepEqual(
              got.topk_prompt_logprobs!.map((r) =>
                r === null ? null : r.map(([id, lp]) => [id, num(lp)])
              ),
              rows.map((r) =>
                r === null ? null : r.map(([id, lp]) => [id, f32(lp)])
              ),
            );
            const k = Math.max(1, ...rows.map((r) => r?.length ?? 0));
            assert.deepEqual(got.topk_shape, [rows.length, k]);
          }
          assert.equal(got.prompt_cache_hit_tokens, 0);
        }
      });
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
