/**
 * A small seeded pseudo-random number generator: xoshiro128** (Blackman &
 * Vigna), seeded through splitmix32. Every step is 32-bit integer arithmetic
 * (`Math.imul`, shifts, `>>> 0`), so the same seed gives the same stream on every
 * platform. `normal()` also uses `Math.log`/`Math.cos`/`Math.sqrt`; V8 computes
 * those with its own portable fdlibm port, so Deno gives the same floats
 * everywhere.
 *
 * Used for LoRA initialisation, demo-model weights, sampling uniforms and dropout
 * masks. The whole state is four 32-bit words (`getState` / `Prng.fromState`), so
 * a checkpoint can carry it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Prng } from "./prng.ts";
 * const a = new Prng(42), b = new Prng(42);
 * assert.equal(a.nextU32(), b.nextU32());
 * const u = a.nextFloat();
 * assert.ok(u >= 0 && u < 1);
 * ```
 *
 * @module
 */

/** Thrown for an invalid seed or state. */
export class PrngError extends Error {
  /** @param message what was wrong, naming the field and the limit */
  constructor(message: string) {
    super(message);
    this.name = "PrngError";
  }
}

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/** One splitmix32 step: a well-mixed 32-bit word from a 32-bit counter. */
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * 64-bit FNV-1a of a string's UTF-8 bytes, folded to a non-negative safe
 * integer (the low 53 bits). Used to seed a generator from a name.
 *
 * @param text any string
 * @returns an integer in [0, 2^53)
 */
export function hashStringToSeed(text: string): number {
  const bytes = new TextEncoder().encode(text);
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * prime) & mask;
  }
  return Number(h & 0x1fffffffffffffn);
}

/**
 * Seeded xoshiro128** generator.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Prng } from "./prng.ts";
 * const rng = Prng.fromString("ultrasafe/usf-finance");
 * const w = new Float32Array(4);
 * rng.fillNormal(w, 0, 0.02);
 * assert.ok(w.every((x) => Math.abs(x) < 1));
 * ```
 */
export class Prng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /**
   * @param seed a safe integer (negative values are taken modulo 2^53)
   * @throws {PrngError} if `seed` is not a safe integer
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new PrngError(`seed must be a safe integer: got ${seed}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    // Four splitmix32 outputs from a counter that starts at a mix of both halves.
    let x = splitmix32(lo ^ splitmix32(hi));
    this.#s0 = x;
    x = splitmix32(x);
    this.#s1 = x;
    x = splitmix32(x);
    this.#s2 = x;
    x = splitmix32(x);
    this.#s3 = x;
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /**
   * A generator seeded from a string (64-bit FNV-1a of its UTF-8 bytes).
   *
   * @param text e.g. a model name
   * @returns a new generator
   */
  static fromString(text: string): Prng {
    return new Prng(hashStringToSeed(text));
  }

  /**
   * A generator continuing from a saved state.
   *
   * @param state four unsigned 32-bit words, not all zero, from `getState()`
   * @returns a new generator
   * @throws {PrngError} if the state is malformed
   */
  static fromState(state: readonly number[]): Prng {
    if (
      state.length !== 4 ||
      !state.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32)
    ) {
      throw new PrngError(
        `state must be four integers in [0, 2^32): got ${
          JSON.stringify(state)
        }`,
      );
    }
    if (state.every((w) => w === 0)) {
      throw new PrngError("state must not be all zeros");
    }
    const rng = new Prng(0);
    [rng.#s0, rng.#s1, rng.#s2, rng.#s3] = state as [
      number,
      number,
      number,
      number,
    ];
    return rng;
  }

  /** @returns the four 32-bit state words, for `Prng.fromState` */
  getState(): [number, number, number, number] {
    return [this.#s0, this.#s1, this.#s2, this.#s3];
  }

  /** @returns the next uniformly distributed unsigned 32-bit integer */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 = (this.#s2 ^ this.#s0) >>> 0;
    this.#s3 = (this.#s3 ^ this.#s1) >>> 0;
    this.#s1 = (this.#s1 ^ this.#s2) >>> 0;
    this.#s0 = (this.#s0 ^ this.#s3) >>> 0;
    this.#s2 = (this.#s2 ^ t) >>> 0;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** @returns a uniform double in [0, 1) with 53 random bits (two `nextU32` calls) */
  nextFloat(): number {
    const a = this.nextU32() >>> 5; // 27 bits
    const b = this.nextU32() >>> 6; // 26 bits
    return (a * 67108864 + b) / TWO_POW_53;
  }

  /**
   * A normally distributed sample by Box–Muller: with u1 in (0, 1] and u2 in
   * [0, 1), sqrt(-2 ln u1) · cos(2π u2) is N(0, 1). Uses one pair of uniforms per
   * sample (the sine partner is dropped, so the state stays four words).
   *
   * @param mean the mean (default 0)
   * @param std the standard deviation (default 1)
   * @returns one sample
   */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.nextFloat();
    const u2 = this.nextFloat();
    return mean +
      std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Fills `out` with independent normal samples, in index order. Each pair of
   * uniforms gives two samples (the cosine and the sine of one Box–Muller draw),
   * so this is twice as fast as calling `normal()` per element, and its stream
   * differs from repeated `normal()` calls.
   *
   * @param out the array to fill
   * @param mean the mean (default 0)
   * @param std the standard deviation (default 1)
   * @returns `out`
   */
  fillNormal<T extends Float32Array | Float64Array>(
    out: T,
    mean = 0,
    std = 1,
  ): T {
    for (let i = 0; i < out.length; i += 2) {
      const r = std * Math.sqrt(-2 * Math.log(1 - this.nextFloat()));
      const theta = 2 * Math.PI * this.nextFloat();
      out[i] = mean + r * Math.cos(theta);
      if (i + 1 < out.length) out[i + 1] = mean + r * Math.sin(theta);
    }
    return out;
  }

  /**
   * A uniform integer in [0, n) without modulo bias (rejection sampling).
   *
   * @param n the bound, an integer in [1, 2^32]
   * @returns an integer in [0, n)
   * @throws {PrngError} if `n` is out of range
   */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new PrngError(`n must be an integer in [1, 2^32]: got ${n}`);
    }
    // Reject the top partial block of 2^32 so every residue is equally likely.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }
}
