/**
 * Prints matrix-product throughput (GFLOP/s) of the cpu and native backends:
 * `deno run -A kernels/native/gemm_gflops.ts [M N K]` (default 256 256 256).
 *
 * @module
 */

import type { Backend, GemmOptions } from "../backend.ts";
import { CpuBackend } from "../cpu/backend.ts";
import { Rng } from "../cpu/_random.ts";
import { nativeUnavailableReason, openNativeBackend } from "./backend.ts";

/** Best-of-`reps` GFLOP/s of `be.gemm` at M×N×K (after two warm-up runs). */
export function gemmGflops(
  be: Backend,
  m: number,
  n: number,
  k: number,
  opts: GemmOptions = {},
  reps = 5,
): number {
  const rng = new Rng(1);
  const a = be.fromArray(rng.floats(m * k), opts.transA ? [k, m] : [m, k]);
  const b = be.fromArray(rng.floats(k * n), opts.transB ? [n, k] : [k, n]);
  const out = be.zeros([m, n]);
  for (let i = 0; i < 2; i++) be.gemm(a, b, { ...opts, out });
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    be.gemm(a, b, { ...opts, out });
    best = Math.min(best, performance.now() - t0);
  }
  return (2 * m * n * k) / (best / 1000) / 1e9;
}

if (import.meta.main) {
  const [m, n, k] = Deno.args.length === 3
    ? Deno.args.map(Number)
    : [256, 256, 256];
  const backends: Backend[] = [new CpuBackend()];
  const native = openNativeBackend();
  if (native !== null) backends.push(native);
  else console.log(`native: ${nativeUnavailableReason()}`);
  for (const be of backends) {
    for (
      const [transA, transB] of [[false, false], [false, true], [true, false], [
        true,
        true,
      ]]
    ) {
      const g = gemmGflops(be, m, n, k, { transA, transB });
      console.log(
        `${be.name} gemm ${m}x${n}x${k} transA=${transA} transB=${transB}: ${
          g.toFixed(2)
        } GFLOP/s`,
      );
    }
  }
}
