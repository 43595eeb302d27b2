/**
 * The tensor handle of the WebGPU backend: a shape over a pooled GPU buffer.
 *
 * @module
 */

import { type DType, shapeSize, type Tensor } from "../backend.ts";
import { WebGpuError } from "./errors.ts";

/** A dense row-major tensor stored in a GPU buffer (which may be larger than needed). */
export class GpuTensor implements Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  #buffer: GPUBuffer | null;

  /** Wraps `buffer`, which must hold at least `4 · size` bytes. */
  constructor(buffer: GPUBuffer, shape: readonly number[], dtype: DType) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new WebGpuError(
          "tensor",
          `dimensions must be non-negative integers: got [${shape.join(",")}]`,
        );
      }
    }
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = shapeSize(shape);
    this.#buffer = buffer;
  }

  /** The storage buffer; throws once the tensor has been freed. */
  get buffer(): GPUBuffer {
    if (this.#buffer === null) {
      throw new WebGpuError(
        "tensor",
        `used after free (shape [${this.shape.join(",")}])`,
      );
    }
    return this.#buffer;
  }

  /** Bytes a binding of this tensor covers (at least 4: empty bindings are invalid). */
  get bytes(): number {
    return Math.max(4, this.size * 4);
  }

  /** Whether the tensor has been freed. */
  get freed(): boolean {
    return this.#buffer === null;
  }

  /** Detaches and returns the buffer (for the pool); later use throws. */
  detach(): GPUBuffer {
    const b = this.buffer;
    this.#buffer = null;
    return b;
  }
}
