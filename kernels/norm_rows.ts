/**
 * How RMSNorm reads its input: x [N, C] with a weight of C values normalizes
 * each row; with a weight of D values, D dividing C, it normalizes each
 * D-wide group of a row on its own (Qwen3's per-head q/k norms, x [N, H·D]).
 * The data is the same either way: N·C/D rows of D.
 *
 * @module
 */
import { fmtShape, ShapeError } from "./cpu/shape_error.ts";

/**
 * The rows and width RMSNorm runs over for x [n, c] and weight shape
 * `wShape`.
 *
 * @throws {ShapeError} for a weight that is not 1-D of c or a divisor of c
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normRows } from "./norm_rows.ts";
 * assert.deepEqual(normRows("rmsNorm", 3, 32, [8]), { rows: 12, width: 8 });
 * ```
 */
export function normRows(
  op: string,
  n: number,
  c: number,
  wShape: readonly number[],
): { rows: number; width: number } {
  const d = wShape.length === 1 ? wShape[0] : -1;
  if (d < 1 || c % d !== 0) {
    throw new ShapeError(
      op,
      `w must be [${c}], or [D] with D dividing ${c} (one norm per D-wide group): got ${
        fmtShape(wShape)
      }`,
    );
  }
  return { rows: (n * c) / d, width: d };
}
