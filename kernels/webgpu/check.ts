/**
 * Argument checks of the WebGPU ops (the same rules and messages as the CPU
 * reference).
 *
 * @module
 */

import type { Tensor } from "../backend.ts";
import { fmtShape, ShapeError } from "../cpu/shape_error.ts";
import { BindingLimitError } from "./errors.ts";
import { GpuTensor } from "./tensor.ts";

/**
 * The tensor as a live, unsplit f32 (or i32) GpuTensor: a ShapeError naming
 * `op` and `name` otherwise, or a {@linkcode BindingLimitError} when it is
 * split over several buffers (ops that take split tensors use
 * {@linkcode gpuAny}).
 */
export function gpu(
  t: Tensor,
  op: string,
  name: string,
  dtype: "f32" | "i32" = "f32",
): GpuTensor {
  const g = gpuAny(t, op, name, dtype);
  if (g.split) {
    throw new BindingLimitError(
      op,
      name,
      g.limitBytes,
      `${fmtShape(g.shape)} is ${
        g.size * 4
      } bytes, split over ${g.blocks().length} buffers, and ${op} does not take split tensors`,
    );
  }
  return g;
}

/** Like {@linkcode gpu}, but a tensor split over several buffers is allowed. */
export function gpuAny(
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
