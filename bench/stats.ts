/**
 * The few statistics the benchmark reports.
 *
 * @module
 */

/**
 * The median of `xs` (the mean of the middle two for an even count), or null
 * when there are none.
 *
 * @example
 * ```ts
 * import { median } from "./stats.ts";
 * median([3, 1, 2]); // 2
 * median([4, 1, 2, 3]); // 2.5
 * ```
 */
export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** `a / b` when both are known and b > 0, else null. */
export function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || !(b > 0) ? null : a / b;
}

/** A number with three significant figures (at least as an integer), for tables. */
export function fmt(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return "—";
  if (Math.abs(x) >= 100) return x.toFixed(0);
  return x.toPrecision(3);
}
