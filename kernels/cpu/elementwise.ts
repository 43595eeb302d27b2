/**
 * Elementwise helpers and the KV-cache row copy.
 *
 * @module
 */

/** out[i] += alpha · x[i]. */
export function axpyForward(
  out: Float32Array,
  x: Float32Array,
  alpha: number,
): void {
  for (let i = 0; i < out.length; i++) out[i] += alpha * x[i];
}

/** out[i] = a[i] + b[i]. */
export function addForward(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] + b[i];
}

/** Σ over arrays, in order, of Σ x² (float64). */
export function sumOfSquaresOf(xs: readonly Float32Array[]): number {
  let s = 0;
  for (const x of xs) for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/**
 * Copies src [B·n, C] into rows start … start+n−1 of each sequence of
 * cache [B·rows, C].
 */
export function writeRowsForward(
  cache: Float32Array,
  src: Float32Array,
  batch: number,
  rows: number,
  start: number,
  n: number,
  c: number,
): void {
  for (let b = 0; b < batch; b++) {
    cache.set(src.subarray(b * n * c, (b + 1) * n * c), (b * rows + start) * c);
  }
}

/** out = a ⊙ b (elementwise product). */
export function mulForward(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] * b[i];
}
