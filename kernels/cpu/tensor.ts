/**
 * The host-memory tensor of the CPU backends.
 *
 * @module
 */

import { type DType, shapeSize, type Tensor } from "../backend.ts";
import type { HalfFormat } from "../half.ts";
import { fmtShape, ShapeError } from "./shape_error.ts";

/**
 * A dense row-major tensor held in a typed array. `data` is the storage itself
 * (not a copy): kernels read and write it directly.
 */
export class CpuTensor implements Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  #data: Float32Array | Int32Array | Uint16Array | null;

  /**
   * Wraps `data` (not copied); its length must equal the product of `shape`.
   * A `Uint16Array` holds 16-bit floats of the given `format`.
   */
  constructor(
    data: Float32Array | Int32Array | Uint16Array,
    shape: readonly number[],
    format: HalfFormat = "bf16",
  ) {
    const size = shapeSize(shape);
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new ShapeError(
          "tensor",
          `dimensions must be non-negative integers: got ${fmtShape(shape)}`,
        );
      }
    }
    if (data.length !== size) {
      throw new ShapeError(
        "tensor",
        `data length ${data.length} does not match shape ${
          fmtShape(shape)
        } (${size} elements)`,
      );
    }
    this.shape = Object.freeze([...shape]);
    this.dtype = data instanceof Float32Array
      ? "f32"
      : data instanceof Int32Array
      ? "i32"
      : format;
    this.size = size;
    this.#data = data;
  }

  /** The storage; throws once the tensor has been freed. */
  get data(): Float32Array | Int32Array | Uint16Array {
    if (this.#data === null) {
      throw new ShapeError(
        "tensor",
        `used after free (shape ${fmtShape(this.shape)})`,
      );
    }
    return this.#data;
  }

  /** Whether {@linkcode CpuTensor.release} has been called. */
  get freed(): boolean {
    return this.#data === null;
  }

  /** Drops the storage; later access to `data` throws. */
  release(): void {
    this.#data = null;
  }
}
