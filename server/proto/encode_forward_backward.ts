/**
 * `encodeForwardBackwardOutput`: a Bios forward-backward reply as the
 * `tinker_public.ForwardBackwardOutput` bytes SDK 0.25 reads from
 * `retrieve_future` when it asks with `Accept: application/x-protobuf`.
 *
 * Per-datum outputs become `ArrayRecord`s of `BatchedTensor`s: each field's
 * values for a run of datums back to back, with int64 byte offsets (one per
 * datum, plus the end) delimiting each datum's array, and the shape after
 * the first dimension as `trailing_shape`. Datums are grouped into one
 * record while every field keeps its dtype and trailing shape; a change
 * starts the next record (the SDK reads any number of them, in order).
 * Float32 tensors travel as float32, int64 as int64. Bios's `loss` is not
 * on this wire: it is `metrics["loss:sum"]`, which is.
 *
 * @module
 */

import { create, toBinary } from "@bufbuild/protobuf";
import type { ForwardBackwardOutput } from "../../protocol/types/responses.ts";
import type { TensorData } from "../../protocol/types/tensor_data.ts";
import {
  type ArrayRecordMsg,
  ArrayRecordSchema,
  type BatchedTensorMsg,
  BatchedTensorSchema,
  DType,
  ForwardBackwardOutputSchema,
} from "./schema.ts";
import { float32Bytes, int64Bytes, offsetBytes } from "./wire_arrays.ts";

/** How a field's values travel: dtype and the shape after the first dimension. */
function layoutOf(t: TensorData, where: string): string {
  const shape = t.shape ?? [t.data.length];
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) {
    throw new Error(
      `${where}: shape [${shape}] does not multiply out to its ${t.data.length} values`,
    );
  }
  return `${t.dtype}/${shape.slice(1).join(",")}`;
}

/** One field's values for a run of datums. */
function batched(tensors: TensorData[], where: string): BatchedTensorMsg {
  const dtype = tensors[0].dtype;
  const parts: Uint8Array[] = [];
  const offsets = [0];
  let total = 0;
  for (const [i, t] of tensors.entries()) {
    if (dtype === "int64") {
      for (const v of t.data) {
        if (!Number.isSafeInteger(v)) {
          throw new Error(
            `${where}[${i}]: int64 value ${v} is not a safe integer`,
          );
        }
      }
    }
    const b = dtype === "int64" ? int64Bytes(t.data) : float32Bytes(t.data);
    parts.push(b);
    total += b.length;
    offsets.push(total);
  }
  const data = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  const shape = tensors[0].shape ?? [tensors[0].data.length];
  return create(BatchedTensorSchema, {
    data,
    offsets: offsetBytes(offsets),
    dtype: dtype === "int64" ? DType.INT64 : DType.FLOAT32,
    trailingShape: shape.slice(1).map(BigInt),
  });
}

/** One record of datums `[from, to)`. */
function record(
  outputs: Array<Record<string, TensorData>>,
  keys: string[],
  from: number,
  to: number,
  typeTag: string,
): ArrayRecordMsg {
  const fields: Record<string, BatchedTensorMsg> = {};
  for (const k of keys) {
    const tensors = outputs.slice(from, to).map((o) => o[k]);
    Object.defineProperty(fields, k, {
      value: batched(tensors, `lossFnOutputs[${from}..${to}].${k}`),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return create(ArrayRecordSchema, {
    typeTag,
    fields,
    numDatums: BigInt(to - from),
  });
}

/**
 * Encodes a forward-backward reply as `tinker_public.ForwardBackwardOutput`.
 * Every datum's output must have the same field names (the SDK lines fields
 * up by datum index across records).
 *
 * @param out Bios's reply
 * @returns the protobuf bytes to send with `Content-Type: application/x-protobuf`
 * @throws Error when datums' field names differ, a shape does not match its
 *   data, or an int64 value is not a safe integer (a server-side fault)
 *
 * @example
 * ```ts
 * import { encodeForwardBackwardOutput } from "./encode_forward_backward.ts";
 * const bytes = encodeForwardBackwardOutput({
 *   lossFnOutputType: "ArrayRecord",
 *   lossFnOutputs: [{ logprobs: { data: [-0.5, -1], dtype: "float32", shape: [2] } }],
 *   metrics: { "loss:sum": 1.5 },
 *   loss: 1.5,
 * });
 * console.log(bytes.length > 0);
 * ```
 */
export function encodeForwardBackwardOutput(
  out: ForwardBackwardOutput,
): Uint8Array {
  const outputs = out.lossFnOutputs;
  const records: ArrayRecordMsg[] = [];
  if (outputs.length > 0) {
    const keys = Object.keys(outputs[0]).sort();
    const layouts = outputs.map((o, i) => {
      const ks = Object.keys(o).sort();
      if (ks.join("\0") !== keys.join("\0")) {
        throw new Error(
          `lossFnOutputs[${i}] has fields [${ks}], lossFnOutputs[0] has [${keys}]: every datum's output must have the same fields`,
        );
      }
      return keys.map((k) => layoutOf(o[k], `lossFnOutputs[${i}].${k}`))
        .join(";");
    });
    let from = 0;
    for (let i = 1; i <= outputs.length; i++) {
      if (i === outputs.length || layouts[i] !== layouts[from]) {
        records.push(record(outputs, keys, from, i, out.lossFnOutputType));
        from = i;
      }
    }
  }
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(out.metrics)) {
    Object.defineProperty(metrics, k, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return toBinary(
    ForwardBackwardOutputSchema,
    create(ForwardBackwardOutputSchema, {
      lossFnOutputType: out.lossFnOutputType,
      lossFnOutputs: records,
      metrics,
    }),
  );
}
