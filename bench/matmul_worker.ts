/**
 * Worker: square matrix-product throughput of one Bios backend.
 *
 * `deno run -A bench/matmul_worker.ts --backend native --sizes 512,1024,2048`
 * prints one JSON line: `{"backend", "device", "gflops": {"512": …}}`, or
 * `{"unavailable": reason}` when the backend cannot be opened.
 *
 * Each size n times C = A·B (f32, n×n, no transposes) into a preallocated C:
 * one warm-up, then batches of `k` products followed by one `sync()` (k = 8 at
 * n ≤ 512, else 1, so a GPU wait does not dominate small products), for at
 * least three batches and `--seconds` (one batch when a product takes over a
 * second). GFLOP/s = 2n³ · products / seconds.
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import { Prng } from "../model/prng.ts";
import { Flags } from "./flags.ts";
import { closeBackend, openBackend } from "./open_backend.ts";
import { emit, timeRepeated } from "./timing.ts";

/** Products per synchronised batch at size n (the numpy peer uses the same). */
export function productsPerBatch(n: number): number {
  return n <= 512 ? 8 : 1;
}

/** GFLOP/s of `be.gemm` on n×n matrices, per the policy above. */
export async function measureGemm(
  be: Backend,
  n: number,
  minSeconds: number,
): Promise<number> {
  const rng = new Prng(n);
  const a = be.fromArray(rng.fillNormal(new Float32Array(n * n)), [n, n]);
  const b = be.fromArray(rng.fillNormal(new Float32Array(n * n)), [n, n]);
  const out = be.zeros([n, n]);
  const k = productsPerBatch(n);
  const batch = async () => {
    for (let i = 0; i < k; i++) be.gemm(a, b, { out });
    await be.sync();
  };
  const w0 = performance.now();
  await batch();
  const slow = performance.now() - w0 > 1000;
  const t = await timeRepeated(batch, {
    warmup: 0,
    minRuns: slow ? 1 : 3,
    maxRuns: 50,
    minSeconds: slow ? 0 : minSeconds,
  });
  for (const x of [a, b, out]) be.free(x);
  return (2 * n ** 3 * k * t.runs) / t.seconds / 1e9;
}

if (import.meta.main) {
  const flags = new Flags(Deno.args);
  const opened = await openBackend(flags.str("backend"));
  if (!opened.ok) {
    emit({ unavailable: opened.reason });
  } else {
    const be = opened.backend;
    const gflops: Record<string, number> = {};
    for (const n of flags.ints("sizes")) {
      gflops[n] = await measureGemm(be, n, flags.num("seconds", 0.5));
    }
    emit({ backend: be.name, device: be.device, gflops });
    closeBackend(be);
  }
}
