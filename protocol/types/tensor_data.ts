/**
 * `TensorData`: a flat tensor with its dtype and (optionally) its shape.
 *
 * `data` holds the values in row-major order, as a plain array or a typed
 * array (typed arrays travel as raw bytes on the wire). The anchor's sparse
 * CSR fields are not supported and are refused as unknown keys.
 *
 * @module
 */

import { z } from "zod";
import {
  firstBad,
  isNumericArray,
  type NumericArray,
  TYPE_MISMATCH,
} from "./checks.ts";

/** The element types a tensor may declare. */
export const TENSOR_DTYPES = ["int64", "float32"] as const;

/** Schema of a tensor's element type. */
export const TensorDtypeSchema = z.enum(TENSOR_DTYPES, {
  error: 'must be "int64" or "float32"',
});

/** A tensor's element type. */
export type TensorDtype = typeof TENSOR_DTYPES[number];

/** Schema of the values of a tensor: `number[]`, `Float32Array` or `Int32Array`. */
export const NumericArraySchema: z.ZodType<NumericArray, NumericArray> = z
  .custom<
    NumericArray
  >(isNumericArray, {
    error: "must be an array of numbers (number[], Float32Array or Int32Array)",
    params: TYPE_MISMATCH,
  }).superRefine((v, ctx) => {
    if (!Array.isArray(v)) return;
    const i = firstBad(v, () => true);
    if (i >= 0) {
      ctx.addIssue({
        code: "custom",
        message: "must be a number",
        path: [i],
        input: v[i],
        continue: false,
      });
    }
  });

/** Product of a shape's dimensions (1 for a scalar shape `[]`). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Schema of a dense tensor; int64 values must be safe integers. */
export const TensorDataSchema = z.strictObject({
  data: NumericArraySchema,
  dtype: TensorDtypeSchema,
  shape: z.array(
    z.number({ error: "must be a non-negative integer" }).refine(
      (d) => Number.isSafeInteger(d) && d >= 0,
      { error: "must be a non-negative integer", abort: true },
    ),
    { error: "must be an array of non-negative integers" },
  ).optional(),
}).superRefine((t, ctx) => {
  if (t.dtype === "int64" && !(t.data instanceof Int32Array)) {
    const i = firstBad(t.data, Number.isSafeInteger);
    if (i >= 0) {
      ctx.addIssue({
        code: "custom",
        message: "must be an integer (the tensor's dtype is int64)",
        path: ["data", i],
        input: t.data[i],
        continue: false,
      });
      return;
    }
  }
  if (t.shape !== undefined && shapeSize(t.shape) !== t.data.length) {
    ctx.addIssue({
      code: "custom",
      message: `must multiply out to the number of values (${t.data.length})`,
      path: ["shape"],
      input: t.shape,
      continue: false,
    });
  }
});

/** A dense tensor: flat `data`, its `dtype` and optional `shape`. */
export interface TensorData {
  /** The values, row-major. */
  data: number[] | Float32Array | Int32Array;
  /** Element type: `int64` values must be integers. */
  dtype: TensorDtype;
  /** Dimensions; their product is `data.length`. 1-D when omitted. */
  shape?: number[];
}

/**
 * The values of a tensor as the typed array its dtype implies: `Int32Array`
 * for int64 (token ids and counts fit in 32 bits), `Float32Array` for float32.
 * A typed array of the right kind is returned as it is, not copied.
 */
export function tensorToTypedArray(t: TensorData): Float32Array | Int32Array {
  if (t.dtype === "int64") {
    return t.data instanceof Int32Array ? t.data : Int32Array.from(t.data);
  }
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}

/**
 * A 1-D `TensorData` holding `values`, dtype chosen from the array's kind
 * (`Int32Array` → int64, otherwise float32) unless given.
 */
export function tensorData(
  values: NumericArray,
  dtype: TensorDtype = values instanceof Int32Array ? "int64" : "float32",
): TensorData {
  return { data: values, dtype, shape: [values.length] };
}
