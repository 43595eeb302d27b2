/**
 * How a benchmark worker times a repeated step, shared by every Bios worker
 * (the Python peers follow the same policy): `warmup` untimed runs, then timed
 * runs until at least `minRuns` and `minSeconds` are reached, or `maxRuns`.
 *
 * @module
 */

/** The repetition policy. */
export interface RepeatPolicy {
  /** Untimed runs first. */
  warmup: number;
  /** Fewest timed runs. */
  minRuns: number;
  /** Most timed runs. */
  maxRuns: number;
  /** Keep running until this much time has passed (unless `maxRuns` is hit). */
  minSeconds: number;
}

/** What {@linkcode timeRepeated} measured. */
export interface Timed {
  /** Timed runs done. */
  runs: number;
  /** Seconds they took in all. */
  seconds: number;
}

/**
 * Run `step` per `policy` and time the timed runs as one stretch (so work a
 * step leaves queued is paid by the next, and the last step must finish its
 * own work: `step` should end by waiting for the backend).
 *
 * @example
 * ```ts
 * import { timeRepeated } from "./timing.ts";
 * const t = await timeRepeated(async () => {}, { warmup: 1, minRuns: 3, maxRuns: 5, minSeconds: 0 });
 * t.runs; // 3
 * ```
 */
export async function timeRepeated(
  step: () => Promise<void>,
  policy: RepeatPolicy,
): Promise<Timed> {
  for (let i = 0; i < policy.warmup; i++) await step();
  const t0 = performance.now();
  let runs = 0;
  let seconds = 0;
  while (
    runs < policy.maxRuns &&
    (runs < policy.minRuns || seconds < policy.minSeconds)
  ) {
    await step();
    runs++;
    seconds = (performance.now() - t0) / 1000;
  }
  return { runs, seconds };
}

/** Print one JSON line on stdout: a worker's whole answer. */
export function emit(result: Record<string, unknown>): void {
  console.log(JSON.stringify(result));
}
