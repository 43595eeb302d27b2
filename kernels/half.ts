/**
 * 16-bit floats as the frozen base weights are kept: bfloat16 (the top half
 * of a float32) and IEEE half (f16). Each element is a `Uint16Array` entry
 * holding the format's bits; {@linkcode widenHalf} turns a run of them into
 * float32 (exactly: both formats are subsets of float32) and
 * {@linkcode narrowToHalf} rounds float32 to them (to nearest, ties to even).
 *
 * @module
 */

/** The 16-bit formats a base weight can be kept in. */
export type HalfFormat = "bf16" | "f16";

/** The 16-bit formats, for checks. */
export const HALF_FORMATS: readonly HalfFormat[] = ["bf16", "f16"];

/** A 16-bit tensor's bits on the host, with its format. */
export interface HalfBits {
  /** One element per entry, in the format's bit layout. */
  readonly bits: Uint16Array;
  /** The format of `bits`. */
  readonly format: HalfFormat;
}

/** f16 bits → float32 value, for every one of the 65,536 bit patterns. */
let f16Table: Float32Array | undefined;

function f16Values(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    t[h] = exp === 0
      ? sign * mant * 2 ** -24
      : exp === 0x1f
      ? (mant === 0 ? sign * Infinity : NaN)
      : sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  f16Table = t;
  return t;
}

/**
 * Widen `count` 16-bit elements starting at `from` into `out` (from index
 * `at`), exactly.
 *
 * @example
 * ```ts
 * const out = new Float32Array(1);
 * widenHalf({ bits: new Uint16Array([0x3f80]), format: "bf16" }, out);
 * console.log(out[0]); // 1
 * ```
 */
export function widenHalf(
  src: HalfBits,
  out: Float32Array,
  from = 0,
  count: number = src.bits.length - from,
  at = 0,
): void {
  const bits = src.bits;
  if (src.format === "bf16") {
    // bfloat16 is the top half of a float32: shift it back into place.
    const u = new Uint32Array(out.buffer, out.byteOffset + 4 * at, count);
    for (let i = 0; i < count; i++) u[i] = bits[from + i] << 16;
    return;
  }
  const t = f16Values();
  for (let i = 0; i < count; i++) out[at + i] = t[bits[from + i]];
}

/** All of a 16-bit array as a new float32 array. */
export function halfToF32(src: HalfBits): Float32Array {
  const out = new Float32Array(src.bits.length);
  widenHalf(src, out);
  return out;
}

const f32Box = new Float32Array(1);
const u32Box = new Uint32Array(f32Box.buffer);

/** float32 → bf16 bits, rounded to nearest even (NaN stays NaN). */
function toBf16(x: number): number {
  f32Box[0] = x;
  const u = u32Box[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40; // quiet NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 → f16 bits, rounded to nearest even; overflow gives ±Infinity. */
function toF16(x: number): number {
  f32Box[0] = x;
  const u = u32Box[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal (or zero): shift the implicit 1 in, round to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  const rest = mant & 0x1fff;
  let m = mant >>> 13;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/**
 * Round float32 values to a 16-bit format (to nearest, ties to even).
 *
 * @example
 * ```ts
 * narrowToHalf(new Float32Array([1, 0.1]), "bf16").bits; // [0x3f80, 0x3dcd]
 * ```
 */
export function narrowToHalf(data: Float32Array, format: HalfFormat): HalfBits {
  const bits = new Uint16Array(data.length);
  const round = format === "bf16" ? toBf16 : toF16;
  for (let i = 0; i < data.length; i++) bits[i] = round(data[i]);
  return { bits, format };
}
