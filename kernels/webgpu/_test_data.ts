/**
 * Test data and comparison shared by the WebGPU backend's tests.
 *
 * @module
 */

import assert from "node:assert/strict";

/**
 * `n` deterministic floats, uniform in [lo, hi), from a linear congruential
 * generator seeded by `seed`.
 *
 * @example
 * ```ts
 * import { rand } from "./_test_data.ts";
 * rand(4, 1).length; // 4
 * ```
 */
export function rand(
  n: number,
  seed: number,
  lo = -0.5,
  hi = 0.5,
): Float32Array {
  let s = seed >>> 0;
  return new Float32Array(n).map(() => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (hi - lo) * (s / 2 ** 32);
  });
}

/**
 * Asserts `got` matches `want` element by element within the stated
 * tolerance |got − want| ≤ abs + rel·|want| (defaults 1e-4 and 1e-3),
 * naming `what` and the first element that does not.
 */
export function close(
  got: Float32Array,
  want: Float32Array,
  what = "values",
  abs = 1e-4,
  rel = 1e-3,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= abs + rel * Math.abs(want[i]))) {
      assert.fail(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
    }
  }
}
