/**
 * A small seeded PRNG for tests and conformance checks (mulberry32).
 *
 * @module
 */

/** A deterministic source of uniforms in [0, 1) from a 32-bit seed. */
export class Rng {
  #s: number;

  /** Starts the stream at `seed`. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** The next uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** `n` uniforms in [lo, hi). */
  floats(n: number, lo = -1, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.next();
    return out;
  }

  /** `n` integers in [0, limit). */
  ints(n: number, limit: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * limit);
    return out;
  }
}
