/**
 * A size-bucketed pool of GPU buffers, so that the hot path reuses buffers
 * instead of allocating them.
 *
 * @module
 */

import { FreeLists } from "./free_lists.ts";

/**
 * Rounds a byte size up to its bucket: four buckets per power of two (at most
 * 25 % waste), never under 256 bytes.
 */
export function bucketSize(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes));
  const pow = 2 ** Math.floor(Math.log2(b));
  if (pow === b) return b;
  const step = pow / 4;
  return Math.ceil(b / step) * step;
}

/** Counters of a {@linkcode BufferPool}, for tests and diagnostics. */
export interface PoolStats {
  /** Buffers created since the pool was made. */
  created: number;
  /** Acquisitions served from a free buffer. */
  reused: number;
  /** Buffers now waiting in the pool. */
  idle: number;
}

/**
 * Free lists of GPU buffers keyed by bucket size, for one usage set, oldest
 * buffer out first ({@linkcode FreeLists}).
 *
 * @example
 * ```ts ignore
 * const pool = new BufferPool(device, GPUBufferUsage.STORAGE);
 * const b = pool.acquire(1000); // a 1024-byte buffer
 * pool.release(b);
 * pool.acquire(1000) === b; // true
 * ```
 */
export class BufferPool {
  readonly #device: GPUDevice;
  readonly #usage: number;
  readonly #maxSize: number;
  readonly #free = new FreeLists<number, GPUBuffer>();
  #created = 0;
  #reused = 0;

  /**
   * A pool creating buffers with `usage` on `device`; a bucket past `maxSize`
   * (the device's `maxBufferSize`) shrinks to the requested size.
   */
  constructor(device: GPUDevice, usage: number, maxSize = Infinity) {
    this.#device = device;
    this.#usage = usage;
    this.#maxSize = maxSize;
  }

  /** A buffer of at least `bytes` bytes (its size is the bucket size). */
  acquire(bytes: number): GPUBuffer {
    let size = bucketSize(bytes);
    if (size > this.#maxSize) size = Math.ceil(bytes / 4) * 4;
    const hit = this.#free.take(size);
    if (hit) {
      this.#reused++;
      return hit;
    }
    this.#created++;
    return this.#free.stamp(
      this.#device.createBuffer({ size, usage: this.#usage }),
    );
  }

  /** Returns a buffer obtained from {@linkcode BufferPool.acquire}. */
  release(buffer: GPUBuffer): void {
    this.#free.put(buffer.size, buffer);
  }

  /** Current counters. */
  stats(): PoolStats {
    return {
      created: this.#created,
      reused: this.#reused,
      idle: this.#free.idle,
    };
  }

  /** Destroys every idle buffer. */
  destroy(): void {
    for (const b of this.#free.drain()) b.destroy();
  }
}
