/**
 * A frozen weight as the host kernels take it: float32, or 16-bit bits
 * widened to float32 where a kernel needs them.
 *
 * @module
 */
import { type HalfBits, widenHalf } from "../half.ts";

/** A weight matrix's storage: float32, or 16-bit (bf16 or f16) bits. */
export type WeightArray = Float32Array | HalfBits;

/** The widened copy of the last 16-bit weight (ops run one at a time). */
let scratch = new Float32Array(0);

/**
 * `w` as float32: itself, or its bits widened into a scratch array that the
 * next call reuses (so use the result before asking for another weight).
 *
 * @example
 * ```ts
 * const w = wideWeight({ bits: new Uint16Array([0x3f80]), format: "bf16" });
 * console.log(w[0]); // 1
 * ```
 */
export function wideWeight(w: WeightArray): Float32Array {
  if (w instanceof Float32Array) return w;
  const n = w.bits.length;
  if (scratch.length < n) scratch = new Float32Array(n);
  const out = scratch.length === n ? scratch : scratch.subarray(0, n);
  widenHalf(w, out);
  return out;
}

/** Copy `w` (widened, if 16-bit) into `out`, which has its length. */
export function widenInto(out: Float32Array, w: WeightArray): void {
  if (w instanceof Float32Array) out.set(w);
  else widenHalf(w, out);
}
