/**
 * WebAssembly SIMD (f32x4) kernels for the native backend's elementwise hot
 * loops: SwiGLU, RMSNorm and RoPE forward and backward, and the row softmax
 * of attention's tiles and of log-softmax. The module (simd_code.ts) is
 * compiled once, synchronously.
 *
 * Data lives in the module's own memory: the elementwise ops copy their
 * inputs in and their outputs out in blocks small enough to stay in cache;
 * attention keeps its score tiles there (OpenBLAS writes and reads them in
 * place). All arithmetic is IEEE f32 in a fixed order, so results repeat bit
 * for bit.
 *
 * @module
 */

import { ropeKey } from "../rope_freq.ts";
import { type RopeDims, ropeForward, ropeTables } from "../cpu/rope.ts";
import { rmsNormBackward, rmsNormForward } from "../cpu/rmsnorm.ts";
import { simdFunctions, SWIGLU_STEP } from "./simd_code.ts";
import { wasmModule } from "./wasm_binary.ts";

interface Exports {
  memory: WebAssembly.Memory;
  widenBf16: (src: number, dst: number, bytes: number) => void;
  swigluFwd: (g: number, u: number, h: number, bytes: number) => void;
  swigluBwd: (
    dh: number,
    g: number,
    u: number,
    dgate: number,
    dup: number,
    bytes: number,
  ) => void;
  softmaxFwd: (
    p: number,
    ld: number,
    m: number,
    first: number,
    step: number,
    stats: number,
  ) => void;
  softmaxBwd: (
    p: number,
    ds: number,
    ld: number,
    m: number,
    first: number,
    step: number,
    stats: number,
  ) => void;
  rope: (
    x: number,
    out: number,
    rows: number,
    width: number,
    half: number,
    cos: number,
    sin: number,
    seqLen: number,
    row0: number,
  ) => void;
  rmsFwd: (
    x: number,
    y: number,
    w: number,
    rstd: number,
    rows: number,
    width: number,
    c: number,
    eps: number,
  ) => void;
  rmsBwd: (
    dy: number,
    x: number,
    w: number,
    rstd: number,
    dx: number,
    dw: number,
    rows: number,
    width: number,
    c: number,
  ) => void;
}

/** Elements per SwiGLU chunk: five chunks of f32 stay in L2. */
const CHUNK = 8192;
const PAGE = 65536;

let compiled: WebAssembly.Module | null = null;

/** The compiled module (built on first use). */
function simdModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(
    wasmModule(simdFunctions(), 1),
  );
  return compiled;
}

/**
 * One instance of the SIMD kernels with its own memory. Not re-entrant (the
 * memory is scratch space shared by every call).
 *
 * @example
 * ```ts
 * import { SimdKernels } from "./simd_kernels.ts";
 * const simd = new SimdKernels();
 * const h = new Float32Array(3);
 * simd.swigluForward(h, new Float32Array([0, 1, -1]), new Float32Array([1, 1, 1]), 3);
 * // h ≈ [0, 0.731, -0.269]
 * ```
 */
export class SimdKernels {
  readonly #x: Exports;
  #f32: Float32Array;

  /** Compiles (once per process) and instantiates the module. */
  constructor() {
    const inst = new WebAssembly.Instance(simdModule(), {});
    this.#x = inst.exports as unknown as Exports;
    this.#f32 = new Float32Array(this.#x.memory.buffer);
  }

  /**
   * The memory as floats, at least `floats` long (grown when needed; a grow
   * invalidates views taken before it).
   */
  floats(floats: number): Float32Array {
    const need = floats * 4 - this.#x.memory.buffer.byteLength;
    if (need > 0) {
      this.#x.memory.grow(Math.ceil(need / PAGE));
      this.#f32 = new Float32Array(this.#x.memory.buffer);
    }
    return this.#f32;
  }

  /**
   * The bf16 elements `from … from + count` of `bits` widened (exactly) into
   * this instance's memory at float index `at`, returned as a view of it
   * (valid until the memory next grows: use it at once).
   */
  widenBf16(
    bits: Uint16Array,
    from: number,
    count: number,
    at: number,
  ): Float32Array {
    const padded = Math.ceil(count / 8) * 8;
    // the bits go after the floats: at + padded floats, then padded u16s
    const bitsAt = at + padded;
    const mem = this.floats(bitsAt + padded / 2);
    new Uint16Array(mem.buffer, bitsAt * 4, count).set(
      bits.subarray(from, from + count),
    );
    this.#x.widenBf16(bitsAt * 4, at * 4, padded * 2);
    return this.#f32.subarray(at, at + count);
  }

  /** h[i] = g[i] σ(g[i]) u[i] for i < n. */
  swigluForward(
    h: Float32Array,
    g: Float32Array,
    u: Float32Array,
    n: number,
  ): void {
    const mem = this.floats(3 * CHUNK);
    for (let s = 0; s < n; s += CHUNK) {
      const len = Math.min(CHUNK, n - s);
      mem.set(g.subarray(s, s + len), 0);
      mem.set(u.subarray(s, s + len), CHUNK);
      this.#x.swigluFwd(
        0,
        CHUNK * 4,
        2 * CHUNK * 4,
        roundUpTo(len, SWIGLU_STEP) * 4,
      );
      h.set(mem.subarray(2 * CHUNK, 2 * CHUNK + len), s);
    }
  }

  /** dup = dh·g·σ(g), dgate = dh·u·σ(g)(1 + g(1 − σ(g))) for i < n. */
  swigluBackward(
    dgate: Float32Array,
    dup: Float32Array,
    dh: Float32Array,
    g: Float32Array,
    u: Float32Array,
    n: number,
  ): void {
    const mem = this.floats(5 * CHUNK);
    for (let s = 0; s < n; s += CHUNK) {
      const len = Math.min(CHUNK, n - s);
      mem.set(dh.subarray(s, s + len), 0);
      mem.set(g.subarray(s, s + len), CHUNK);
      mem.set(u.subarray(s, s + len), 2 * CHUNK);
      this.#x.swigluBwd(
        0,
        CHUNK * 4,
        2 * CHUNK * 4,
        3 * CHUNK * 4,
        4 * CHUNK * 4,
        roundUpTo(len, SWIGLU_STEP) * 4,
      );
      dgate.set(mem.subarray(3 * CHUNK, 3 * CHUNK + len), s);
      dup.set(mem.subarray(4 * CHUNK, 4 * CHUNK + len), s);
    }
  }

  /**
   * RoPE of `rows` rows (see ../cpu/rope.ts; inverse: the backward). Heads
   * whose half width is not a multiple of 4 floats take the reference loop.
   */
  rope(
    out: Float32Array,
    x: Float32Array,
    rows: number,
    dims: RopeDims,
    inverse: boolean,
  ): void {
    const half = dims.headDim / 2;
    if (half % 4 !== 0) return ropeForward(out, x, rows, dims, inverse);
    const width = dims.heads * dims.headDim;
    const { cos, sin, negSin } = ropeTablesOf(dims);
    const block = Math.max(1, Math.floor(CHUNK / width));
    const xAt = 2 * cos.length, outAt = xAt + block * width;
    const mem = this.floats(outAt + block * width);
    mem.set(cos, 0);
    mem.set(inverse ? negSin : sin, cos.length);
    for (let r0 = 0; r0 < rows; r0 += block) {
      const m = Math.min(block, rows - r0);
      mem.set(x.subarray(r0 * width, (r0 + m) * width), xAt);
      this.#x.rope(
        xAt * 4,
        outAt * 4,
        m,
        width * 4,
        half * 4,
        0,
        cos.length * 4,
        dims.seqLen,
        r0,
      );
      out.set(mem.subarray(outAt, outAt + m * width), r0 * width);
    }
  }

  /**
   * RMSNorm forward (see ../cpu/rmsnorm.ts) with Σ x² in f32; rows whose
   * width is not a multiple of 4 take the reference loop.
   */
  rmsNormForward(
    y: Float32Array,
    rstd: Float32Array,
    x: Float32Array,
    w: Float32Array,
    eps: number,
    n: number,
    c: number,
  ): void {
    if (c % 4 !== 0) return rmsNormForward(y, rstd, x, w, eps, n, c);
    const block = Math.max(1, Math.floor(CHUNK / c));
    const rAt = c, xAt = rAt + roundUp4(block), yAt = xAt + block * c;
    const mem = this.floats(yAt + block * c);
    mem.set(w, 0);
    for (let r0 = 0; r0 < n; r0 += block) {
      const m = Math.min(block, n - r0);
      mem.set(x.subarray(r0 * c, (r0 + m) * c), xAt);
      this.#x.rmsFwd(xAt * 4, yAt * 4, 0, rAt * 4, m, c * 4, c, eps);
      y.set(mem.subarray(yAt, yAt + m * c), r0 * c);
      rstd.set(mem.subarray(rAt, rAt + m), r0);
    }
  }

  /**
   * RMSNorm backward (see ../cpu/rmsnorm.ts) in f32, dw summed over rows in
   * order; rows whose width is not a multiple of 4 take the reference loop.
   */
  rmsNormBackward(
    dx: Float32Array,
    dw: Float32Array,
    dy: Float32Array,
    x: Float32Array,
    w: Float32Array,
    rstd: Float32Array,
    n: number,
    c: number,
  ): void {
    if (c % 4 !== 0) return rmsNormBackward(dx, dw, dy, x, w, rstd, n, c);
    const block = Math.max(1, Math.floor(CHUNK / c));
    const dwAt = c, rAt = 2 * c, dyAt = rAt + roundUp4(block);
    const xAt = dyAt + block * c, dxAt = xAt + block * c;
    const mem = this.floats(dxAt + block * c);
    mem.set(w, 0);
    mem.fill(0, dwAt, dwAt + c);
    for (let r0 = 0; r0 < n; r0 += block) {
      const m = Math.min(block, n - r0);
      mem.set(dy.subarray(r0 * c, (r0 + m) * c), dyAt);
      mem.set(x.subarray(r0 * c, (r0 + m) * c), xAt);
      mem.set(rstd.subarray(r0, r0 + m), rAt);
      this.#x.rmsBwd(
        dyAt * 4,
        xAt * 4,
        0,
        rAt * 4,
        dxAt * 4,
        dwAt * 4,
        m,
        c * 4,
        c,
      );
      dx.set(mem.subarray(dxAt, dxAt + m * c), r0 * c);
    }
    dw.set(mem.subarray(dwAt, dwAt + c));
  }

  /**
   * Row softmax in place on the memory: rows i < m of the tile at float `p`
   * (ld floats apart, ld a multiple of 4) see columns < first + step·i, the
   * rest become 0; floats stats + 2i, stats + 2i + 1 get the row max and
   * Σ e^(s − max).
   */
  softmaxForward(
    p: number,
    ld: number,
    m: number,
    first: number,
    step: number,
    stats: number,
  ): void {
    this.#x.softmaxFwd(p * 4, ld, m, first, step, stats * 4);
  }

  /**
   * Backward of {@linkcode SimdKernels.softmaxForward} in place: p (scores
   * on entry) = e^(s − lse) on visible columns, 0 elsewhere; then
   * ds (dP on entry) = p · (dP − rowdot), with lse and rowdot of row i at
   * floats stats + 2i and stats + 2i + 1.
   */
  softmaxBackward(
    p: number,
    ds: number,
    ld: number,
    m: number,
    first: number,
    step: number,
    stats: number,
  ): void {
    this.#x.softmaxBwd(p * 4, ds * 4, ld, m, first, step, stats * 4);
  }
}

/** RoPE's cos and sin tables, and −sin for the inverse, by their dims. */
const ropeCache = new Map<
  string,
  { cos: Float32Array; sin: Float32Array; negSin: Float32Array }
>();

function ropeTablesOf(
  dims: RopeDims,
): { cos: Float32Array; sin: Float32Array; negSin: Float32Array } {
  const key = `${dims.seqLen},${dims.offset},${
    ropeKey(dims.headDim, dims.theta, dims.scaling)
  }`;
  let got = ropeCache.get(key);
  if (got === undefined) {
    const { cos, sin } = ropeTables(dims);
    got = { cos, sin, negSin: sin.map((x) => -x) };
    if (ropeCache.size >= 64) ropeCache.clear();
    ropeCache.set(key, got);
  }
  return got;
}

/** n rounded up to a multiple of `step`. */
function roundUpTo(n: number, step: number): number {
  return Math.ceil(n / step) * step;
}

/** n rounded up to a multiple of 4. */
export function roundUp4(n: number): number {
  return (n + 3) & ~3;
}
