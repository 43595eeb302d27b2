/**
 * The tensor handle of the WebGPU backend: a shape over one pooled GPU buffer,
 * or, when the tensor exceeds the binding limit, over several (one per block
 * of its {@linkcode Layout}).
 *
 * @module
 */

import { type DType, shapeSize, type Tensor } from "../backend.ts";
import { WebGpuError } from "./errors.ts";
import {
  type BlockRange,
  blockRanges,
  isSplit,
  type Layout,
} from "./layout.ts";
import type { Arena } from "./packed.ts";

/** One block of a tensor with its buffer, bindable as a storage binding. */
export interface Block extends BlockRange {
  /** The block's buffer (row-major [r1 − r0, c1 − c0]). */
  readonly buffer: GPUBuffer;
  /** Bytes the block's data covers (at least 4). */
  readonly bytes: number;
  /** Where the block's data starts in `buffer`, in bytes. */
  readonly offset: number;
}

/**
 * Bytes that `elements` of `dtype` take in a buffer (at least 4): 4 each, or
 * two 16-bit elements a u32 word.
 */
export function storageBytes(elements: number, dtype: DType): number {
  const words = dtype === "bf16" || dtype === "f16"
    ? Math.ceil(elements / 2)
    : elements;
  return Math.max(4, words * 4);
}

/** A dense row-major tensor stored in GPU buffers (each may be larger than needed). */
export class GpuTensor implements Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** The block grid; a single block unless the tensor is split. */
  readonly layout: Layout;
  /** The binding limit (bytes) the tensor was split under, for messages. */
  readonly limitBytes: number;
  /** Where the data starts in its buffer, in bytes (non-zero for packed views). */
  readonly offset: number;
  /** The arena this tensor is a view into, or null when it owns its buffers. */
  readonly arena: Arena | null;
  #buffers: GPUBuffer[] | null;

  /**
   * Wraps `buffers`: one buffer of at least `4 · size` bytes, or one per block
   * of `layout` (in {@linkcode blockRanges} order); with `view`, a view
   * `offset` bytes into an arena's single buffer.
   */
  constructor(
    buffers: GPUBuffer | readonly GPUBuffer[],
    shape: readonly number[],
    dtype: DType,
    layout?: Layout,
    limitBytes = Infinity,
    view?: { arena: Arena; offset: number },
  ) {
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
    const rows = shape.length === 0 ? 1 : shape[0];
    const cols = rows === 0 ? 1 : this.size / rows;
    this.layout = layout ??
      { rows, cols, rowsPer: Math.max(rows, 1), colsPer: Math.max(cols, 1) };
    this.limitBytes = limitBytes;
    this.offset = view?.offset ?? 0;
    this.arena = view?.arena ?? null;
    const list = Array.isArray(buffers) ? [...buffers] : [buffers as GPUBuffer];
    const want = blockRanges(this.layout).length;
    if (list.length !== want) {
      throw new WebGpuError(
        "tensor",
        `a tensor of ${want} blocks needs ${want} buffers: got ${list.length}`,
      );
    }
    this.#buffers = list;
  }

  #live(): GPUBuffer[] {
    if (this.#buffers === null) {
      throw new WebGpuError(
        "tensor",
        `used after free (shape [${this.shape.join(",")}])`,
      );
    }
    return this.#buffers;
  }

  /** Whether the tensor is stored in more than one buffer. */
  get split(): boolean {
    return isSplit(this.layout);
  }

  /**
   * The storage buffer; throws once the tensor has been freed, or when it is
   * split (ops that take split tensors go through {@linkcode blocks}).
   */
  get buffer(): GPUBuffer {
    const list = this.#live();
    if (list.length !== 1) {
      throw new WebGpuError(
        "tensor",
        `[${this.shape.join(",")}] is split into ${list.length} buffers ` +
          `(binding limit ${this.limitBytes} bytes); this use needs one buffer`,
      );
    }
    return list[0];
  }

  /** Bytes a binding of this tensor covers (at least 4: empty bindings are invalid). */
  get bytes(): number {
    return storageBytes(this.size, this.dtype);
  }

  /** The blocks with their buffers (one block covering all of an unsplit tensor). */
  blocks(): Block[] {
    const list = this.#live();
    return blockRanges(this.layout).map((r, i) => ({
      ...r,
      buffer: list[i],
      bytes: storageBytes((r.r1 - r.r0) * (r.c1 - r.c0), this.dtype),
      offset: i === 0 ? this.offset : 0,
    }));
  }

  /** Whether the tensor has been freed. */
  get freed(): boolean {
    return this.#buffers === null;
  }

  /**
   * Detaches and returns the buffers (for the pool; a view's buffer belongs
   * to its arena); later use throws.
   */
  detachAll(): GPUBuffer[] {
    const b = this.#live();
    this.#buffers = null;
    return b;
  }

  /** Detaches and returns the one buffer of an unsplit tensor; later use throws. */
  detach(): GPUBuffer {
    const b = this.buffer;
    this.#buffers = null;
    return b;
  }
}
