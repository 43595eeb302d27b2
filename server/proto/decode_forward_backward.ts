/**
 * `decodeForwardBackwardRequest`: the body of SDK 0.25's
 * `POST /api/v1/forward_backward` (`application/x-protobuf`,
 * `tinker_public.ForwardBackwardRequest`) as Bios's own request values.
 *
 * What it does to the wire's values: token ids (int32 bytes) become
 * `Int32Array`s; each loss input becomes a `TensorData` — float32 as
 * `Float32Array`, bfloat16 widened to float32, int64 and int32 as `int64`
 * held in an `Int32Array` (an int64 value outside int32 is refused, naming
 * it: token ids are below 2^31), sparse CSR densified. Loss-input and
 * config keys stay as sent (snake_case); Bios's datum and config schemas
 * rename them when the training client validates the batch. Image and
 * audio chunks are refused. Every fault — truncated or malformed bytes, a
 * payload that is not whole elements, a bad CSR index — is an
 * `InvalidArgumentError` whose `field` names where (`data[1].loss_fn_inputs
 * .weights.dense`).
 *
 * Bodies arrive uncompressed: the gateway answers `client/config` with
 * `proto_compress_fwdbwd: false`, so the SDK does not zstd them. A zstd
 * frame is recognised by its magic number and refused with that reason.
 *
 * @module
 */

import { fromBinary } from "@bufbuild/protobuf";
import type { DatumInput } from "../../protocol/types/datum.ts";
import type { EncodedTextChunk } from "../../protocol/types/model_input.ts";
import type { TensorData } from "../../protocol/types/tensor_data.ts";
import { fieldName } from "../../protocol/parse.ts";
import { InvalidArgumentError } from "../../runtime/errors.ts";
import {
  type ChunkMsg,
  type DatumMsg,
  DType,
  ForwardBackwardRequestSchema,
  type TensorMsg,
} from "./schema.ts";
import { checkWire } from "./wire_check.ts";
import {
  readBfloat16s,
  readFloat32s,
  readInt32s,
  readInt64s,
} from "./wire_arrays.ts";

/**
 * Most elements a sparse tensor may densify to (2^24: 64 MiB of float32),
 * so that a small body cannot ask for a huge allocation. Far above any
 * sequence a loss input describes.
 */
export const MAX_DENSE_ELEMENTS = 1 << 24;

/** A forward-backward request read from the protobuf wire. */
export interface DecodedForwardBackwardRequest {
  /** The training run (`model_id`). */
  modelId: string;
  /** The client's sequence number (`seq_id`; 0 when the SDK had none). */
  seqId: number;
  /** The batch, as Bios's datum inputs (keys as sent, e.g. `target_tokens`). */
  data: DatumInput[];
  /** The loss function's name, as sent. */
  lossFn: string;
  /** The loss function's settings, keys as sent; undefined when none were sent. */
  lossFnConfig: Record<string, number> | undefined;
  /** True for a forward pass only (the SDK's `forward`). */
  forwardOnly: boolean;
}

const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function invalid(path: PropertyKey[], problem: string): never {
  const field = fieldName("", path);
  throw new InvalidArgumentError(field, `${field} ${problem}`);
}

/** A safe non-negative dimension from an int64. */
function dim(v: bigint, path: PropertyKey[]): number {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    invalid(path, `must be a non-negative dimension: got ${v}`);
  }
  return Number(v);
}

/** Widens int64s to an Int32Array, refusing values outside int32. */
function int64ToInt32(v: BigInt64Array, path: PropertyKey[]): Int32Array {
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x < -2147483648n || x > 2147483647n) {
      invalid(
        [...path, i],
        `must fit in 32 bits (Bios holds int64 tensors as int32; token ids are below 2^31): got ${x}`,
      );
    }
    out[i] = Number(x);
  }
  return out;
}

/** A tensor's values from bytes in its wire dtype, as Bios holds them. */
function values(
  bytes: Uint8Array,
  dtype: number,
  path: PropertyKey[],
): { data: Float32Array | Int32Array; dtype: TensorData["dtype"] } {
  const field = fieldName("", path);
  switch (dtype) {
    case DType.FLOAT32:
      return { data: readFloat32s(bytes, field), dtype: "float32" };
    case DType.BFLOAT16:
      return { data: readBfloat16s(bytes, field), dtype: "float32" };
    case DType.INT64:
      return {
        data: int64ToInt32(readInt64s(bytes, field), path),
        dtype: "int64",
      };
    case DType.INT32:
      return { data: readInt32s(bytes, field), dtype: "int64" };
    default:
      return invalid(
        [...path.slice(0, -1), "dtype"],
        `must be DTYPE_FLOAT32, DTYPE_BFLOAT16, DTYPE_INT64 or DTYPE_INT32: got ${dtype}`,
      );
  }
}

/** Densifies a 2-D CSR tensor, checking every index. */
function densify(
  t: TensorMsg & { encoding: { case: "sparseCsr" } },
  shape: number[],
  path: PropertyKey[],
): TensorData {
  const csr = t.encoding.value;
  const at = [...path, "sparse_csr"];
  if (shape.length !== 2) {
    invalid(
      [...path, "shape"],
      `must have two dimensions for a sparse CSR tensor: got [${shape}]`,
    );
  }
  const [rows, cols] = shape;
  if (rows * cols > MAX_DENSE_ELEMENTS) {
    invalid(
      [...path, "shape"],
      `must have at most ${MAX_DENSE_ELEMENTS} elements: got [${shape}]`,
    );
  }
  const v = values(csr.values, t.dtype, [...at, "values"]);
  const nnz = v.data.length;
  const crowPath = [...at, "crow_indices"];
  const colPath = [...at, "col_indices"];
  const crow = readInt64s(csr.crowIndices, fieldName("", crowPath));
  const col = readInt64s(csr.colIndices, fieldName("", colPath));
  if (crow.length !== rows + 1) {
    invalid(
      crowPath,
      `must have rows + 1 = ${rows + 1} entries: got ${crow.length}`,
    );
  }
  if (col.length !== nnz) {
    invalid(
      colPath,
      `must have one entry per value (${nnz}): got ${col.length}`,
    );
  }
  if (crow[0] !== 0n) invalid([...crowPath, 0], `must be 0: got ${crow[0]}`);
  if (crow[rows] !== BigInt(nnz)) {
    invalid(
      [...crowPath, rows],
      `must be the number of values (${nnz}): got ${crow[rows]}`,
    );
  }
  const dense = v.data instanceof Float32Array
    ? new Float32Array(rows * cols)
    : new Int32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    if (crow[r + 1] < crow[r]) {
      invalid(
        [...crowPath, r + 1],
        `must not decrease: ${crow[r + 1]} < ${crow[r]}`,
      );
    }
    const lo = Number(crow[r]);
    const hi = Number(crow[r + 1]);
    for (let j = lo; j < hi; j++) {
      const c = col[j];
      if (c < 0n || c >= BigInt(cols)) {
        invalid(
          [...colPath, j],
          `must be a column in [0, ${cols - 1}]: got ${c}`,
        );
      }
      if (j > lo && c <= col[j - 1]) {
        invalid(
          [...colPath, j],
          `must increase within a row: ${c} after ${col[j - 1]}`,
        );
      }
      dense[r * cols + Number(c)] = v.data[j];
    }
  }
  return { data: dense, dtype: v.dtype, shape };
}

/** A wire tensor as a Bios `TensorData`. */
function tensor(t: TensorMsg, path: PropertyKey[]): TensorData {
  const shape = t.shape.map((d, i) => dim(d, [...path, "shape", i]));
  switch (t.encoding.case) {
    case "sparseCsr":
      return densify(
        t as TensorMsg & { encoding: { case: "sparseCsr" } },
        shape,
        path,
      );
    case "dense": {
      const v = values(t.encoding.value, t.dtype, [...path, "dense"]);
      if (shape.length === 0) return { data: v.data, dtype: v.dtype };
      const n = shape.reduce((a, b) => a * b, 1);
      if (n !== v.data.length) {
        invalid(
          [...path, "shape"],
          `must multiply out to the number of values (${v.data.length}): got [${shape}]`,
        );
      }
      return { data: v.data, dtype: v.dtype, shape };
    }
    default: {
      // An empty dense tensor serializes to no encoding at all.
      const v = values(new Uint8Array(0), t.dtype, [...path, "dense"]);
      return shape.length === 0 ? v : { ...v, shape };
    }
  }
}

/** A wire chunk as a Bios text chunk; images and audio are refused. */
function chunk(c: ChunkMsg, path: PropertyKey[]): EncodedTextChunk {
  switch (c.chunk.case) {
    case "encodedText":
      return {
        type: "encoded_text",
        tokens: readInt32s(
          c.chunk.value.tokens,
          fieldName("", [...path, "encoded_text", "tokens"]),
        ),
      };
    case "image":
      return invalid(
        [...path, "image"],
        "is an image chunk: Bios trains text models only (encoded_text chunks)",
      );
    case "dmel":
      return invalid(
        [...path, "dmel"],
        "is an audio (dmel) chunk: Bios trains text models only (encoded_text chunks)",
      );
    default:
      return invalid(
        path,
        "must hold an encoded_text chunk: got an empty chunk",
      );
  }
}

/** A wire datum as a Bios `DatumInput`. */
function datum(d: DatumMsg, path: PropertyKey[]): DatumInput {
  const chunks = d.modelInput.map((c, j) =>
    chunk(c, [...path, "model_input", j])
  );
  const inputs = Object.entries(d.lossFnInputs).map((
    [k, t],
  ) => [k, tensor(t, [...path, "loss_fn_inputs", k])] as const);
  // fromEntries defines own properties: a "__proto__" key stays a key.
  return { modelInput: { chunks }, lossFnInputs: Object.fromEntries(inputs) };
}

/**
 * Decodes a `tinker_public.ForwardBackwardRequest` body.
 *
 * @param bytes the request body, uncompressed
 * @returns the request as Bios values
 * @throws InvalidArgumentError naming the field, for any fault in `bytes`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeForwardBackwardRequest } from "./decode_forward_backward.ts";
 * // model_id "m", seq_id 1, loss_fn "cross_entropy"
 * const body = new Uint8Array([10, 1, 109, 16, 1, 34, 13,
 *   ...new TextEncoder().encode("cross_entropy")]);
 * const req = decodeForwardBackwardRequest(body);
 * assert.equal(req.modelId, "m");
 * assert.equal(req.lossFn, "cross_entropy");
 * ```
 */
export function decodeForwardBackwardRequest(
  bytes: Uint8Array,
): DecodedForwardBackwardRequest {
  if (ZSTD_MAGIC.every((b, i) => bytes[i] === b)) {
    throw new InvalidArgumentError(
      "body",
      "body is zstd-compressed: Bios takes forward_backward uncompressed (its client/config answers proto_compress_fwdbwd: false)",
    );
  }
  checkWire(ForwardBackwardRequestSchema, bytes);
  let msg;
  try {
    msg = fromBinary(ForwardBackwardRequestSchema, bytes);
  } catch (e) {
    // checkWire accepts only what the library reads; this is a safety net.
    throw new InvalidArgumentError(
      "body",
      `body is not a tinker_public.ForwardBackwardRequest: ${
        (e as Error).message
      }`,
      { cause: e },
    );
  }
  const config = Object.entries(msg.lossFnConfig);
  return {
    modelId: msg.modelId,
    seqId: msg.seqId,
    data: msg.data.map((d, i) => datum(d, ["data", i])),
    lossFn: msg.lossFn,
    lossFnConfig: config.length === 0 ? undefined : Object.fromEntries(config),
    forwardOnly: msg.forwardOnly,
  };
}
