/**
 * Worker: square matrix-product throughput of one Bios backend.
 *
 * `deno run -A bench/matmul_worker.ts --backend native --sizes 512,1024,2048`
 * prints one JSON line: `{"backend", "device", "gflops": {"512": …},
 * "batch": {"512": k, …}}`, or `{"unavailable": reason}` when the backend
 * cannot be opened.
 *
 * Each size n times C = A·B (f32, n×n, no transposes) into a preallocated C,
 * in batches of k products followed by one `sync()`: a GPU wait costs a fixed
 * ~11 ms in Deno, which must not be what is measured. One warm-up product,
 * then k grows until a batch takes at least {@linkcode MIN_BATCH_SECONDS}
 * (see {@linkcode calibrateBatch}; the numpy peer follows the same rule), then
 * batches for at least three and `--seconds` (one batch when a batch takes
 * over a second). GFLOP/s = 2n³ · products / seconds.
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import { Prng } from "../model/prng.ts";
import { Flags } from "./flags.ts";
import { closeBackend, openBackend } from "./open_backend.ts";
import { emit, timeRepeated } from "./timing.ts";

/** Shortest batch: the sync at its end costs under 5% of it on lavapipe. */
export const MIN_BATCH_SECONDS = 0.25;
/** Most products in one batch. */
export const MAX_BATCH = 4096;

/**
 * Products per batch: starting from 1, k is scaled by the shortfall (10%
 * over) until a batch of k takes `minSeconds` or k reaches `maxK`.
 * `timeBatch(k)` runs k products and their sync and returns seconds.
 *
 * @example
 * ```ts
 * import { calibrateBatch } from "./matmul_worker.ts";
 * // a product of 10 ms and a sync of 11 ms
 * const k = await calibrateBatch((k) => Promise.resolve(k * 0.01 + 0.011));
 * k; // 26: 0.271 s
 * ```
 */
export async function calibrateBatch(
  timeBatch: (k: number) => Promise<number>,
  minSeconds = MIN_BATCH_SECONDS,
  maxK = MAX_BATCH,
): Promise<number> {
  let k = 1;
  for (;;) {
    const t = await timeBatch(k);
    if (t >= minSeconds || k >= maxK) return k;
    k = Math.min(maxK, Math.max(k + 1, Math.ceil(k * 1.1 * minSeconds / t)));
  }
}

/** GFLOP/s of `be.gemm` on n×n matrices, per the policy above. */
export async function measureGemm(
  be: Backend,
  n: number,
  minSeconds: number,
): Promise<{ gflops: number; batch: number }> {
  const rng = new Prng(n);
  const a = be.fromArray(rng.fillNormal(new Float32Array(n * n)), [n, n]);
  const b = be.fromArray(rng.fillNormal(new Float32Array(n * n)), [n, n]);
  const out = be.zeros([n, n]);
  const run = async (k: number) => {
    for (let i = 0; i < k; i++) be.gemm(a, b, { out });
    await be.sync();
  };
  await run(1); // warm-up: compiles and uploads
  const k = await calibrateBatch(async (k) => {
    const t0 = performance.now();
    await run(k);
    return (performance.now() - t0) / 1000;
  });
  const w0 = performance.now();
  await run(k);
  const slow = performance.now() - w0 > 1000;
  const t = await timeRepeated(() => run(k), {
    warmup: 0,
    minRuns: slow ? 1 : 3,
    maxRuns: 50,
    minSeconds: slow ? 0 : minSeconds,
  });
  for (const x of [a, b, out]) be.free(x);
  return { gflops: (2 * n ** 3 * k * t.runs) / t.seconds / 1e9, batch: k };
}

if (import.meta.main) {
  const flags = new Flags(Deno.args);
  const opened = await openBackend(flags.str("backend"));
  if (!opened.ok) {
    emit({ unavailable: opened.reason });
  } else {
    const be = opened.backend;
    const gflops: Record<string, number> = {};
    const batch: Record<string, number> = {};
    for (const n of flags.ints("sizes")) {
      const r = await measureGemm(be, n, flags.num("seconds", 0.5));
      gflops[n] = r.gflops;
      batch[n] = r.batch;
    }
    emit({ backend: be.name, device: be.device, gflops, batch });
    closeBackend(be);
  }
}
