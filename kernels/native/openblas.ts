/**
 * OpenBLAS's `cblas_sgemm` through `Deno.dlopen` (needs `--allow-ffi`), as a
 * {@linkcode GemmFn} the CPU backend's ops can run on.
 *
 * The library comes from Debian's `libopenblas0-pthread`. Its sums run in f32
 * in OpenBLAS's own blocked order, which is fixed for a given library and
 * thread count; each product's thread count is set from its shape (small
 * ones on one thread, see {@linkcode ONE_THREAD_MAX_WORK}), so results repeat
 * bit for bit on one machine.
 *
 * @module
 */

import type { GemmFn } from "../cpu/gemm.ts";

/** Where OpenBLAS is looked for, in order. */
export const OPENBLAS_PATHS: readonly string[] = [
  "libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
];

/** The Debian package that provides OpenBLAS. */
export const OPENBLAS_PACKAGE = "libopenblas0-pthread";

const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

const symbols = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // M
      "i32", // N
      "i32", // K
      "f32", // alpha
      "buffer", // A
      "i32", // lda
      "buffer", // B
      "i32", // ldb
      "f32", // beta
      "buffer", // C
      "i32", // ldc
    ],
    result: "void",
  },
  openblas_get_config: { parameters: [], result: "pointer" },
  openblas_get_num_threads: { parameters: [], result: "i32" },
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
} as const;

type OpenBlasLib = Deno.DynamicLibrary<typeof symbols>;

/**
 * `c = alpha · op(a) · op(b) + beta · c` on row-major sub-matrices of larger
 * arrays: op(a) is [M,K], op(b) is [K,N], c is [M,N]. Element (r, s) of the
 * stored a sits at `a[aOff + r·lda + s]` (likewise b, c), so a head's columns
 * of a [rows, heads·D] array are passed without copying. With `beta = 0`, c is
 * only written.
 */
export type StridedGemmFn = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  aOff: number,
  lda: number,
  b: Float32Array,
  bOff: number,
  ldb: number,
  beta: number,
  c: Float32Array,
  cOff: number,
  ldc: number,
) => void;

/** A loaded OpenBLAS: its sgemm and a description. */
export interface OpenBlas {
  /** `cblas_sgemm` with the signature of the TypeScript gemm. */
  gemm: GemmFn;
  /** `cblas_sgemm` on sub-matrices with leading dimensions. */
  gemmStrided: StridedGemmFn;
  /** e.g. "OpenBLAS 0.3.21 … (2 threads) from /usr/lib/…/libopenblas.so.0". */
  description: string;
}

/** The outcome of {@linkcode loadOpenBlas}: the library, or why there is none. */
export type OpenBlasLoad = { ok: true; blas: OpenBlas } | {
  ok: false;
  reason: string;
};

const cache = new Map<string, OpenBlasLoad>();

/**
 * Opens OpenBLAS from the first of `paths` that loads (the result is cached
 * per path list). Never throws: a failure comes back with a one-line reason
 * naming the package to install.
 */
export function loadOpenBlas(
  paths: readonly string[] = OPENBLAS_PATHS,
): OpenBlasLoad {
  const key = paths.join("\n");
  let got = cache.get(key);
  if (got === undefined) {
    got = open(paths);
    cache.set(key, got);
  }
  return got;
}

function open(paths: readonly string[]): OpenBlasLoad {
  const errors: string[] = [];
  for (const path of paths) {
    let lib: OpenBlasLib;
    try {
      lib = Deno.dlopen(path, symbols);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (
        e instanceof Deno.errors.NotCapable ||
        e instanceof Deno.errors.PermissionDenied
      ) {
        return {
          ok: false,
          reason:
            `the native backend needs --allow-ffi to load OpenBLAS (Debian package ${OPENBLAS_PACKAGE}): ${
              msg.split("\n")[0]
            }`,
        };
      }
      errors.push(`${path}: ${msg.split("\n")[0]}`);
      continue;
    }
    const config = lib.symbols.openblas_get_config();
    const name = config === null
      ? "OpenBLAS"
      : Deno.UnsafePointerView.getCString(config);
    const threads = lib.symbols.openblas_get_num_threads();
    const useThreads = threadPolicy(lib, threads);
    return {
      ok: true,
      blas: {
        gemm: sgemmOf(lib, useThreads),
        gemmStrided: stridedSgemmOf(lib, useThreads),
        description: `${name} (${threads} threads) from ${path}`,
      },
    };
  }
  return {
    ok: false,
    reason:
      `OpenBLAS not found: install the Debian package ${OPENBLAS_PACKAGE} (tried ${
        errors.join("; ")
      })`,
  };
}

/**
 * Products of at most this many multiply-adds (m·n·k) run on one thread:
 * attention's tiles (64×128×64 here) took ~1.2× longer split over two,
 * while every product of a training step's linear layers, the rank-R ones
 * included (≥ 2·10⁶), ran faster on two (measured inside a step; on their
 * own the rank-R ones preferred one).
 */
export const ONE_THREAD_MAX_WORK = 1 << 20;

/**
 * Sets OpenBLAS's thread count for an m×n×k product before each call (0.2 µs):
 * OpenBLAS's sums differ in the last bits between thread counts, so the count
 * must be a function of the shape alone for reruns to repeat bit for bit,
 * whatever else changed the library's setting.
 *
 * The setting is process-wide: two isolates of one process (Deno workers)
 * calling OpenBLAS at once would change each other's thread count under a
 * running product, which OpenBLAS does not guard. One isolate per process
 * computes with the native backend (the test suite runs its files one at a
 * time for this reason).
 */
function threadPolicy(
  lib: OpenBlasLib,
  max: number,
): (m: number, n: number, k: number) => void {
  return (m, n, k) => {
    lib.symbols.openblas_set_num_threads(
      m * n * k <= ONE_THREAD_MAX_WORK ? 1 : max,
    );
  };
}

function sgemmOf(
  lib: OpenBlasLib,
  useThreads: (m: number, n: number, k: number) => void,
): GemmFn {
  const sgemm = lib.symbols.cblas_sgemm;
  return (out, a, b, m, n, k, transA, transB, alpha, beta) => {
    if (m === 0 || n === 0) return;
    if (k === 0) {
      // nothing to multiply: out = beta · out (beta 0 never reads out)
      for (let i = 0; i < m * n; i++) out[i] = beta === 0 ? 0 : beta * out[i];
      return;
    }
    useThreads(m, n, k);
    sgemm(
      CBLAS_ROW_MAJOR,
      transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
      transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
      m,
      n,
      k,
      alpha,
      a,
      transA ? m : k,
      b,
      transB ? k : n,
      beta,
      out,
      n,
    );
  };
}

function stridedSgemmOf(
  lib: OpenBlasLib,
  useThreads: (m: number, n: number, k: number) => void,
): StridedGemmFn {
  const sgemm = lib.symbols.cblas_sgemm;
  return (
    transA,
    transB,
    m,
    n,
    k,
    alpha,
    a,
    aOff,
    lda,
    b,
    bOff,
    ldb,
    beta,
    c,
    cOff,
    ldc,
  ) => {
    if (m === 0 || n === 0) return;
    // OpenBLAS reads raw memory: refuse a sub-matrix that leaves its array
    const [ar, ac] = transA ? [k, m] : [m, k];
    const [br, bc] = transB ? [n, k] : [k, n];
    inside("a", a, aOff, lda, ar, ac);
    inside("b", b, bOff, ldb, br, bc);
    inside("c", c, cOff, ldc, m, n);
    if (k === 0) {
      // nothing to multiply: c = beta · c (beta 0 never reads c)
      for (let i = 0; i < m; i++) {
        const o = cOff + i * ldc;
        for (let j = o; j < o + n; j++) c[j] = beta === 0 ? 0 : beta * c[j];
      }
      return;
    }
    useThreads(m, n, k);
    // Deno passes a view's own start (its byteOffset) to the library.
    sgemm(
      CBLAS_ROW_MAJOR,
      transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
      transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
      m,
      n,
      k,
      alpha,
      aOff === 0 ? a : a.subarray(aOff),
      lda,
      bOff === 0 ? b : b.subarray(bOff),
      ldb,
      beta,
      cOff === 0 ? c : c.subarray(cOff),
      ldc,
    );
  };
}

/** Throws unless the [rows, cols] sub-matrix at off with leading dimension ld lies in x. */
function inside(
  name: string,
  x: Float32Array,
  off: number,
  ld: number,
  rows: number,
  cols: number,
): void {
  if (rows === 0 || cols === 0) return;
  const ok = Number.isInteger(off) && off >= 0 && Number.isInteger(ld) &&
    ld >= cols && off + (rows - 1) * ld + cols <= x.length;
  if (!ok) {
    throw new RangeError(
      `sgemm: ${name} [${rows},${cols}] at offset ${off} with leading dimension ${ld} does not fit in ${x.length} floats`,
    );
  }
}
