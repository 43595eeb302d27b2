/**
 * Named float32 tensors as they cross the transport (LoRA parameters, Adam
 * moments): a plain record of shape and data, the data as a `Float32Array`
 * (raw bytes on the wire).
 *
 * @module
 */

import { z } from "zod";
import { ownKeysChecked } from "./checks.ts";

/** A named tensor map as a plain record (what the codec carries). */
export type WireTensors = Record<
  string,
  { shape: number[]; data: Float32Array }
>;

const dim = z.number({ error: "must be a dimension" }).refine(
  (d) => Number.isSafeInteger(d) && d >= 0,
  { error: "must be a non-negative integer", abort: true },
);

/** Schema of one wire tensor: its data holds exactly the shape's values. */
export const WireTensorSchema = z.strictObject({
  shape: z.array(dim, { error: "must be an array of dimensions" }),
  data: z.custom<Float32Array>((v) => v instanceof Float32Array, {
    error: "must be a Float32Array",
  }),
}).refine((t) => t.data.length === t.shape.reduce((a, d) => a * d, 1), {
  error: "must hold as many values as its shape says",
  abort: true,
});

/** Schema of a wire tensor map (names are data: no `__proto__`). */
export const WireTensorsSchema: z.ZodType<WireTensors, WireTensors> =
  ownKeysChecked(
    z.record(z.string(), WireTensorSchema, {
      error: "must be an object of tensors",
    }),
    "is not a tensor name",
  );
