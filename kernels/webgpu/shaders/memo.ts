/**
 * Kernel factories, memoized: a factory builds its WGSL source (unrolled
 * loops, string by string) once per argument list. The backend asks for a
 * kernel at every dispatch, and building the source each time cost ~12 ms of
 * host time per training step on the H200, half of the recording.
 *
 * @module
 */

import type { Kernel } from "../context.ts";

/**
 * `make`, built once per argument list (compared as JSON).
 *
 * @example
 * ```ts
 * import { memoKernel } from "./memo.ts";
 * let built = 0;
 * const k = memoKernel((n: number) => {
 *   built++;
 *   return { name: `k${n}`, uniforms: [], buffers: [], body: "" };
 * });
 * k(4) === k(4); // true, and built is 1
 * ```
 */
export function memoKernel<A extends unknown[]>(
  make: (...args: A) => Kernel,
): (...args: A) => Kernel {
  const cache = new Map<string, Kernel>();
  return (...args: A) => {
    const key = JSON.stringify(args);
    let k = cache.get(key);
    if (!k) cache.set(key, k = make(...args));
    return k;
  };
}
