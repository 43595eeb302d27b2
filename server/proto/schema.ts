/**
 * The schema of Tinker's protobuf wire (SDK 0.25, package `tinker_public`,
 * proto3), written here as a `FileDescriptorProto` and turned into runtime
 * descriptors by `@bufbuild/protobuf` — the messages the gateway reads
 * (`ForwardBackwardRequest`) and writes (`ForwardBackwardOutput`,
 * `SampleResponse`), plus those they contain. Names, numbers, types and
 * labels are the SDK's own (`tinker/proto/tinker_public_pb2.py`);
 * `tests/tinker_proto_test.ts` compares them with the SDK's descriptor.
 * The SDK's `SamplingParams`, `StopStrings` and `StopTokens` are left out:
 * no message here refers to them.
 *
 * The TypeScript shapes below are what `protoc-gen-es` would generate for
 * these messages (camelCase field names, `bigint` for int64).
 *
 * @module
 */

import {
  createFileRegistry,
  fromJson,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { type GenMessage, messageDesc } from "@bufbuild/protobuf/codegenv2";
import {
  type DescriptorProtoJson,
  type FieldDescriptorProtoJson,
  type FileDescriptorProtoJson,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

/** Element type of a tensor on the wire (`tinker_public.DType`). */
export const DType = {
  /** Not set: refused. */
  UNSPECIFIED: 0,
  /** 4-byte IEEE floats. */
  FLOAT32: 1,
  /** 8-byte signed integers. */
  INT64: 2,
  /** 4-byte signed integers. */
  INT32: 3,
  /** The upper 16 bits of a float32. */
  BFLOAT16: 4,
} as const;

/** Why a sampled sequence ended (`tinker_public.StopReason`). */
export const StopReason = {
  /** A stop sequence or the end-of-sequence token. */
  STOP: 0,
  /** `max_tokens` or the context ran out. */
  LENGTH: 1,
} as const;

const OPT = "LABEL_OPTIONAL";
const REP = "LABEL_REPEATED";

/** A field: name, number, label, type (and type name for messages and enums). */
function f(
  name: string,
  number: number,
  label: string,
  type: string,
  extra: Partial<FieldDescriptorProtoJson> = {},
): FieldDescriptorProtoJson {
  return {
    name,
    number,
    label: label as FieldDescriptorProtoJson["label"],
    type: type as FieldDescriptorProtoJson["type"],
    ...extra,
  };
}

/** A `map<string, V>` field's entry message. */
function mapEntry(
  name: string,
  valueType: string,
  valueTypeName?: string,
): DescriptorProtoJson {
  return {
    name,
    field: [
      f("key", 1, OPT, "TYPE_STRING"),
      f(
        "value",
        2,
        OPT,
        valueType,
        valueTypeName === undefined ? {} : { typeName: valueTypeName },
      ),
    ],
    options: { mapEntry: true },
  };
}

const P = ".tinker_public.";

/**
 * The schema as the JSON form of a `google.protobuf.FileDescriptorProto`:
 * the messages in the SDK's order (minus the sampling-request ones), then
 * the two enums.
 */
export const TINKER_PUBLIC_FILE: FileDescriptorProtoJson & {
  messageType: DescriptorProtoJson[];
} = {
  name: "tinker_public.proto",
  package: "tinker_public",
  syntax: "proto3",
  messageType: [
    {
      name: "SampleResponse",
      field: [
        f("sequences", 1, REP, "TYPE_MESSAGE", {
          typeName: `${P}SampledSequence`,
        }),
        f("prompt_logprobs", 2, OPT, "TYPE_BYTES", {
          oneofIndex: 0,
          proto3Optional: true,
        }),
        f("topk_prompt_logprobs", 3, OPT, "TYPE_MESSAGE", {
          typeName: `${P}TopkPromptLogprobs`,
          oneofIndex: 1,
          proto3Optional: true,
        }),
        f("prompt_cache_hit_tokens", 4, OPT, "TYPE_INT32"),
      ],
      oneofDecl: [{ name: "_prompt_logprobs" }, {
        name: "_topk_prompt_logprobs",
      }],
    },
    {
      name: "SampledSequence",
      field: [
        f("stop_reason", 1, OPT, "TYPE_ENUM", { typeName: `${P}StopReason` }),
        f("tokens", 2, OPT, "TYPE_BYTES"),
        f("logprobs", 3, OPT, "TYPE_BYTES", {
          oneofIndex: 0,
          proto3Optional: true,
        }),
      ],
      oneofDecl: [{ name: "_logprobs" }],
    },
    {
      name: "TopkPromptLogprobs",
      field: [
        f("token_ids", 1, OPT, "TYPE_BYTES"),
        f("logprobs", 2, OPT, "TYPE_BYTES"),
        f("k", 3, OPT, "TYPE_UINT32"),
        f("prompt_length", 4, OPT, "TYPE_UINT32"),
      ],
    },
    {
      name: "SparseCsr",
      field: [
        f("values", 1, OPT, "TYPE_BYTES"),
        f("crow_indices", 2, OPT, "TYPE_BYTES"),
        f("col_indices", 3, OPT, "TYPE_BYTES"),
      ],
    },
    {
      name: "Tensor",
      field: [
        f("dense", 1, OPT, "TYPE_BYTES", { oneofIndex: 0 }),
        f("sparse_csr", 2, OPT, "TYPE_MESSAGE", {
          typeName: `${P}SparseCsr`,
          oneofIndex: 0,
        }),
        f("dtype", 3, OPT, "TYPE_ENUM", { typeName: `${P}DType` }),
        f("shape", 4, REP, "TYPE_INT64"),
      ],
      oneofDecl: [{ name: "encoding" }],
    },
    {
      name: "BatchedTensor",
      field: [
        f("data", 1, OPT, "TYPE_BYTES"),
        f("offsets", 2, OPT, "TYPE_BYTES"),
        f("dtype", 3, OPT, "TYPE_ENUM", { typeName: `${P}DType` }),
        f("trailing_shape", 4, REP, "TYPE_INT64"),
      ],
    },
    {
      name: "ArrayRecord",
      field: [
        f("type_tag", 1, OPT, "TYPE_STRING"),
        f("fields", 2, REP, "TYPE_MESSAGE", {
          typeName: `${P}ArrayRecord.FieldsEntry`,
        }),
        f("num_datums", 3, OPT, "TYPE_INT64"),
      ],
      nestedType: [
        mapEntry("FieldsEntry", "TYPE_MESSAGE", `${P}BatchedTensor`),
      ],
    },
    {
      name: "ForwardBackwardOutput",
      field: [
        f("loss_fn_output_type", 1, OPT, "TYPE_STRING"),
        f("loss_fn_outputs", 2, REP, "TYPE_MESSAGE", {
          typeName: `${P}ArrayRecord`,
        }),
        f("metrics", 3, REP, "TYPE_MESSAGE", {
          typeName: `${P}ForwardBackwardOutput.MetricsEntry`,
        }),
      ],
      nestedType: [mapEntry("MetricsEntry", "TYPE_DOUBLE")],
    },
    {
      name: "ForwardBackwardRequest",
      field: [
        f("model_id", 1, OPT, "TYPE_STRING"),
        f("seq_id", 2, OPT, "TYPE_INT32"),
        f("data", 3, REP, "TYPE_MESSAGE", { typeName: `${P}Datum` }),
        f("loss_fn", 4, OPT, "TYPE_STRING"),
        f("loss_fn_config", 5, REP, "TYPE_MESSAGE", {
          typeName: `${P}ForwardBackwardRequest.LossFnConfigEntry`,
        }),
        f("forward_only", 6, OPT, "TYPE_BOOL"),
      ],
      nestedType: [mapEntry("LossFnConfigEntry", "TYPE_DOUBLE")],
    },
    {
      name: "Datum",
      field: [
        f("model_input", 1, REP, "TYPE_MESSAGE", { typeName: `${P}Chunk` }),
        f("loss_fn_inputs", 2, REP, "TYPE_MESSAGE", {
          typeName: `${P}Datum.LossFnInputsEntry`,
        }),
      ],
      nestedType: [
        mapEntry("LossFnInputsEntry", "TYPE_MESSAGE", `${P}Tensor`),
      ],
    },
    {
      name: "Chunk",
      field: [
        f("encoded_text", 1, OPT, "TYPE_MESSAGE", {
          typeName: `${P}EncodedTextChunk`,
          oneofIndex: 0,
        }),
        f("image", 2, OPT, "TYPE_MESSAGE", {
          typeName: `${P}ImageChunk`,
          oneofIndex: 0,
        }),
        f("dmel", 3, OPT, "TYPE_MESSAGE", {
          typeName: `${P}DmelChunk`,
          oneofIndex: 0,
        }),
      ],
      oneofDecl: [{ name: "chunk" }],
    },
    {
      name: "EncodedTextChunk",
      field: [f("tokens", 1, OPT, "TYPE_BYTES")],
    },
    {
      name: "ImageChunk",
      field: [
        f("data", 1, OPT, "TYPE_BYTES"),
        f("format", 2, OPT, "TYPE_STRING"),
        f("expected_tokens", 3, OPT, "TYPE_INT32", {
          oneofIndex: 0,
          proto3Optional: true,
        }),
      ],
      oneofDecl: [{ name: "_expected_tokens" }],
    },
    {
      name: "DmelChunk",
      field: [f("dmel", 1, OPT, "TYPE_BYTES")],
    },
  ],
  enumType: [
    {
      name: "StopReason",
      value: [
        { name: "STOP_REASON_STOP", number: StopReason.STOP },
        { name: "STOP_REASON_LENGTH", number: StopReason.LENGTH },
      ],
    },
    {
      name: "DType",
      value: [
        { name: "DTYPE_UNSPECIFIED", number: DType.UNSPECIFIED },
        { name: "DTYPE_FLOAT32", number: DType.FLOAT32 },
        { name: "DTYPE_INT64", number: DType.INT64 },
        { name: "DTYPE_INT32", number: DType.INT32 },
        { name: "DTYPE_BFLOAT16", number: DType.BFLOAT16 },
      ],
    },
  ],
};

const registry = createFileRegistry(
  fromJson(FileDescriptorProtoSchema, TINKER_PUBLIC_FILE as JsonValue),
  () => undefined,
);
const file = registry.getFile("tinker_public.proto")!;

/** Index of a top-level message in {@link TINKER_PUBLIC_FILE}. */
function at(name: string): number {
  return TINKER_PUBLIC_FILE.messageType.findIndex((m) => m.name === name);
}

/** `tinker_public.SampledSequence`. */
export type SampledSequenceMsg =
  & Message<"tinker_public.SampledSequence">
  & {
    /** A {@link StopReason} value. */
    stopReason: number;
    /** int32 little-endian token ids. */
    tokens: Uint8Array;
    /** float32 little-endian log-probabilities, one per token. */
    logprobs?: Uint8Array;
  };

/** `tinker_public.TopkPromptLogprobs`: two row-major N×K matrices. */
export type TopkPromptLogprobsMsg =
  & Message<"tinker_public.TopkPromptLogprobs">
  & {
    /** int32 token ids, N×K. */
    tokenIds: Uint8Array;
    /** float32 log-probabilities, N×K. */
    logprobs: Uint8Array;
    /** K. */
    k: number;
    /** N. */
    promptLength: number;
  };

/** `tinker_public.SampleResponse`. */
export type SampleResponseMsg =
  & Message<"tinker_public.SampleResponse">
  & {
    /** One per sample. */
    sequences: SampledSequenceMsg[];
    /** float32 per prompt token, NaN where there is none. */
    promptLogprobs?: Uint8Array;
    /** Present when top-k prompt logprobs were asked for. */
    topkPromptLogprobs?: TopkPromptLogprobsMsg;
    /** Prompt tokens served from a prefix cache. */
    promptCacheHitTokens: number;
  };

/** `tinker_public.SparseCsr`: a 2-D tensor's non-zeros in CSR form. */
export type SparseCsrMsg =
  & Message<"tinker_public.SparseCsr">
  & {
    /** The non-zero values, in the tensor's dtype. */
    values: Uint8Array;
    /** int64 row pointers (rows + 1). */
    crowIndices: Uint8Array;
    /** int64 column of each value. */
    colIndices: Uint8Array;
  };

/** `tinker_public.Tensor`: dense bytes or sparse CSR, a dtype and a shape. */
export type TensorMsg =
  & Message<"tinker_public.Tensor">
  & {
    /** The `encoding` oneof. */
    encoding:
      | { case: "dense"; value: Uint8Array }
      | { case: "sparseCsr"; value: SparseCsrMsg }
      | { case: undefined; value?: undefined };
    /** A {@link DType} value. */
    dtype: number;
    /** The dimensions. */
    shape: bigint[];
  };

/** `tinker_public.BatchedTensor`: one field of many datums, concatenated. */
export type BatchedTensorMsg =
  & Message<"tinker_public.BatchedTensor">
  & {
    /** Every datum's values, back to back. */
    data: Uint8Array;
    /** int64 byte offsets into `data`: one per datum, plus the end. */
    offsets: Uint8Array;
    /** A {@link DType} value. */
    dtype: number;
    /** Each datum's shape after its first dimension. */
    trailingShape: bigint[];
  };

/** `tinker_public.ArrayRecord`: per-datum output fields of a run of datums. */
export type ArrayRecordMsg =
  & Message<"tinker_public.ArrayRecord">
  & {
    /** The record's class. */
    typeTag: string;
    /** Output fields by name. */
    fields: { [key: string]: BatchedTensorMsg };
    /** How many datums the record holds. */
    numDatums: bigint;
  };

/** `tinker_public.ForwardBackwardOutput`. */
export type ForwardBackwardOutputMsg =
  & Message<"tinker_public.ForwardBackwardOutput">
  & {
    /** The outputs' class, e.g. `"ArrayRecord"`. */
    lossFnOutputType: string;
    /** Runs of datums, each with the same dtypes and trailing shapes. */
    lossFnOutputs: ArrayRecordMsg[];
    /** Metrics by `name:reduction`. */
    metrics: { [key: string]: number };
  };

/** `tinker_public.EncodedTextChunk`. */
export type EncodedTextChunkMsg =
  & Message<"tinker_public.EncodedTextChunk">
  & {
    /** int32 little-endian token ids. */
    tokens: Uint8Array;
  };

/** `tinker_public.ImageChunk` (refused by Bios). */
export type ImageChunkMsg =
  & Message<"tinker_public.ImageChunk">
  & {
    /** The image file's bytes. */
    data: Uint8Array;
    /** `png` or `jpeg`. */
    format: string;
    /** Advisory token count. */
    expectedTokens?: number;
  };

/** `tinker_public.DmelChunk` (refused by Bios). */
export type DmelChunkMsg =
  & Message<"tinker_public.DmelChunk">
  & {
    /** Serialized audio features. */
    dmel: Uint8Array;
  };

/** `tinker_public.Chunk`: one piece of a model input. */
export type ChunkMsg =
  & Message<"tinker_public.Chunk">
  & {
    /** The `chunk` oneof. */
    chunk:
      | { case: "encodedText"; value: EncodedTextChunkMsg }
      | { case: "image"; value: ImageChunkMsg }
      | { case: "dmel"; value: DmelChunkMsg }
      | { case: undefined; value?: undefined };
  };

/** `tinker_public.Datum`. */
export type DatumMsg =
  & Message<"tinker_public.Datum">
  & {
    /** The model input's chunks. */
    modelInput: ChunkMsg[];
    /** Loss inputs by (snake_case) name. */
    lossFnInputs: { [key: string]: TensorMsg };
  };

/** `tinker_public.ForwardBackwardRequest`. */
export type ForwardBackwardRequestMsg =
  & Message<"tinker_public.ForwardBackwardRequest">
  & {
    /** The training run. */
    modelId: string;
    /** The client's sequence number of this request. */
    seqId: number;
    /** The batch. */
    data: DatumMsg[];
    /** The loss function's name. */
    lossFn: string;
    /** The loss function's settings. */
    lossFnConfig: { [key: string]: number };
    /** Forward pass only (no gradients). */
    forwardOnly: boolean;
  };

/** Descriptor of `tinker_public.ForwardBackwardRequest`. */
export const ForwardBackwardRequestSchema: GenMessage<
  ForwardBackwardRequestMsg
> = messageDesc(file, at("ForwardBackwardRequest"));

/** Descriptor of `tinker_public.ForwardBackwardOutput`. */
export const ForwardBackwardOutputSchema: GenMessage<ForwardBackwardOutputMsg> =
  messageDesc(file, at("ForwardBackwardOutput"));

/** Descriptor of `tinker_public.ArrayRecord`. */
export const ArrayRecordSchema: GenMessage<ArrayRecordMsg> = messageDesc(
  file,
  at("ArrayRecord"),
);

/** Descriptor of `tinker_public.BatchedTensor`. */
export const BatchedTensorSchema: GenMessage<BatchedTensorMsg> = messageDesc(
  file,
  at("BatchedTensor"),
);

/** Descriptor of `tinker_public.SampleResponse`. */
export const SampleResponseSchema: GenMessage<SampleResponseMsg> = messageDesc(
  file,
  at("SampleResponse"),
);

/** Descriptor of `tinker_public.SampledSequence`. */
export const SampledSequenceSchema: GenMessage<SampledSequenceMsg> =
  messageDesc(file, at("SampledSequence"));

/** Descriptor of `tinker_public.TopkPromptLogprobs`. */
export const TopkPromptLogprobsSchema: GenMessage<TopkPromptLogprobsMsg> =
  messageDesc(file, at("TopkPromptLogprobs"));
