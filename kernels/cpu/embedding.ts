/**
 * Token embedding: a row gather from a table.
 *
 * Shapes: table [V,C], ids [N] (i32, each in 0 … V−1), out and dy [N,C],
 * dtable [V,C]. Ids are checked by the caller.
 *
 * @module
 */
import { widenHalf } from "../half.ts";
import type { WeightArray } from "./weight.ts";

/** out[i] = table[ids[i]] (a 16-bit table's rows widened exactly). */
export function embeddingForward(
  out: Float32Array,
  table: WeightArray,
  ids: Int32Array,
  c: number,
): void {
  if (!(table instanceof Float32Array)) {
    for (let i = 0; i < ids.length; i++) {
      widenHalf(table, out, ids[i] * c, c, i * c);
    }
    return;
  }
  for (let i = 0; i < ids.length; i++) {
    out.set(table.subarray(ids[i] * c, ids[i] * c + c), i * c);
  }
}

/**
 * forward: out[i] = table[ids[i]]  →  dtable[ids[i]] += dy[i], in order
 * i = 0 … N−1 (dtable is zeroed first).
 */
export function embeddingBackward(
  dtable: Float32Array,
  dy: Float32Array,
  ids: Int32Array,
  c: number,
): void {
  dtable.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const o = ids[i] * c;
    for (let j = 0; j < c; j++) dtable[o + j] += dy[i * c + j];
  }
}
