/**
 * Argument checks of the WebGPU ops (the same rules and messages as the CPU
 * reference).
 *
 * @module
 */

import type { Tensor } from "../backend.ts";
import { fmtShape, ShapeError } from "../cpu/shape_error.ts";
import { GpuTensor } from "./tensor.ts";

/** The tensor as a live f32 (or i32) GpuTensor, or a ShapeError naming `op` and `name`. */
export function gpu(
  t: Tensor,
  op: string,
  name: string,
  dtype: "f32" | "i32" = "f32",
): GpuTensor {
  if (!(t instanceof GpuTensor)) {
    throw new ShapeError(op, `${name} is not a webgpu tensor`);
  }
  if (t.freed) throw new ShapeError(op, `${name} was freed`);
  if (t.dtype !== dtype) {
    throw new ShapeError(op, `${name} must be ${dtype}: got ${t.dtype}`);
  }
  return t;
}

/** [rows, cols] of a 2-D tensor. */
export function dims2(t: Tensor, op: string, name: string): [number, number] {
  if (t.shape.length !== 2) {
    throw new ShapeError(op, `${name} must be 2-D: got ${fmtShape(t.shape)}`);
  }
  return [t.shape[0], t.shape[1]];
}

/** Throws unless `t` has exactly `shape`. */
export function expectShape(
  op: string,
  name: string,
  t: Tensor,
  shape: readonly number[],
): void {
  if (
    t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])
  ) {
    throw new ShapeError(
      op,
      `${name} must be ${fmtShape(shape)}: got ${fmtShape(t.shape)}`,
    );
  }
}

/** Throws unless `v` is a positive integer. */
export function positiveInt(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new ShapeError(op, `${name} must be a positive integer: got ${v}`);
  }
}

export { fmtShape, ShapeError };
