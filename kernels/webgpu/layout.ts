/**
 * How a tensor too large for one storage binding is split into blocks.
 *
 * A tensor is viewed as a matrix [rows, cols] with rows = shape[0] and cols
 * the product of the other dimensions (a 1-D tensor is a column). When its
 * bytes exceed the binding limit it is cut along its longer side: a table
 * [V, C] into row blocks of whole rows, logits [N, V] into column blocks of
 * whole columns (so an LM-head weight block and the logits block it produces
 * cover the same vocabulary range). Each block is its own buffer, stored
 * row-major as a [r1 − r0, c1 − c0] matrix. Block extents along the cut are
 * multiples of 64 where they can be, so blocks of different tensors line up.
 *
 * @module
 */

/** The block grid of one tensor. */
export interface Layout {
  /** Rows of the matrix view (shape[0], or 1 for a scalar). */
  readonly rows: number;
  /** Columns of the matrix view (the other dimensions' product). */
  readonly cols: number;
  /** Rows per block (the last block row may be shorter). */
  readonly rowsPer: number;
  /** Columns per block (the last block column may be shorter). */
  readonly colsPer: number;
}

/** One block of a {@linkcode Layout}: rows [r0, r1) × columns [c0, c1) of the view. */
export interface BlockRange {
  /** First row. */
  readonly r0: number;
  /** One past the last row. */
  readonly r1: number;
  /** First column. */
  readonly c0: number;
  /** One past the last column. */
  readonly c1: number;
}

/** The layout of a tensor of `shape` whose blocks hold at most `limitElems` elements. */
export function planLayout(
  shape: readonly number[],
  limitElems: number,
): Layout {
  const rows = shape.length === 0 ? 1 : shape[0];
  let cols = 1;
  for (let i = 1; i < shape.length; i++) cols *= shape[i];
  if (rows * cols <= limitElems || rows === 0 || cols === 0) {
    return {
      rows,
      cols,
      rowsPer: Math.max(rows, 1),
      colsPer: Math.max(cols, 1),
    };
  }
  // cut the longer side; a line along the other side stays whole when it fits
  if (rows >= cols) {
    const colsPer = Math.min(cols, limitElems);
    return { rows, cols, rowsPer: extent(limitElems, colsPer), colsPer };
  }
  const rowsPer = Math.min(rows, limitElems);
  return { rows, cols, rowsPer, colsPer: extent(limitElems, rowsPer) };
}

/** Lines of length `other` per block: as many as fit, rounded down to 64 when ≥ 64. */
function extent(limitElems: number, other: number): number {
  const e = Math.max(1, Math.floor(limitElems / other));
  return e >= 64 ? Math.floor(e / 64) * 64 : e;
}

/** Whether the layout has more than one block. */
export function isSplit(l: Layout): boolean {
  return l.rowsPer < l.rows || l.colsPer < l.cols;
}

/** Number of block columns. */
export function blockCols(l: Layout): number {
  return Math.max(1, Math.ceil(l.cols / l.colsPer));
}

/** The blocks in row-major order of the block grid (block rows outer). */
export function blockRanges(l: Layout): BlockRange[] {
  if (!isSplit(l)) return [{ r0: 0, r1: l.rows, c0: 0, c1: l.cols }];
  const out: BlockRange[] = [];
  for (let r0 = 0; r0 < l.rows; r0 += l.rowsPer) {
    for (let c0 = 0; c0 < l.cols; c0 += l.colsPer) {
      out.push({
        r0,
        r1: Math.min(l.rows, r0 + l.rowsPer),
        c0,
        c1: Math.min(l.cols, c0 + l.colsPer),
      });
    }
  }
  return out;
}

/** Block boundaries along rows ("r") or columns ("c"): 0, step, 2·step, …, end. */
export function boundaries(l: Layout, axis: "r" | "c"): number[] {
  const [end, step] = axis === "r" ? [l.rows, l.rowsPer] : [l.cols, l.colsPer];
  const out = [0];
  for (let x = step; x < end; x += step) out.push(x);
  if (end > 0) out.push(end);
  return out;
}
