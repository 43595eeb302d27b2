/**
 * A training run's `metrics.jsonl`, in the shape tinker-cookbook users know:
 * one JSON object a line, one line per optimizer step, written when the
 * step's reply comes back. It is built from the replies of the operations
 * alone (what a client sees), so any client of a run can keep one: the HTTP
 * gateway keeps one per run it serves, and a script feeds its own
 * forwardBackward and optimStep replies to one.
 *
 * A line holds `step` (the optimizer's step, `step:max` of its reply), the
 * step's `forward_backward` metrics merged by their reduction (`loss:sum`
 * and `num_tokens:sum` add up over the step's calls; `:max`, `:min` take
 * the extreme; `:mean` averages), `loss:mean` (`loss:sum` over the summed
 * `weights` of the step's data, tinker-cookbook's mean NLL for
 * cross_entropy; absent when the data carry no weights), `learning_rate`,
 * `grad_norm` (when the step clipped), `num_sequences`, `num_tokens`,
 * `forward_backward_calls`, and timings in seconds: `time/forward_backward`
 * (summed over the step's calls), `time/optim_step` and `time/total`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StepMetrics } from "./metrics_log.ts";
 * const m = new StepMetrics();
 * m.forwardBackward(
 *   { metrics: { "loss:sum": 3, "num_tokens:sum": 4 } },
 *   [{ lossFnInputs: { weights: [0, 1, 1, 1] } }],
 *   0.5,
 * );
 * const line = m.optimStep({ metrics: { "step:max": 1, "learning_rate:mean": 1e-3 } }, 0.1);
 * assert.equal(line.step, 1);
 * assert.equal(line["loss:sum"], 3);
 * assert.equal(line["loss:mean"], 1);
 * assert.equal(line.learning_rate, 1e-3);
 * ```
 *
 * @module
 */

/** One line of `metrics.jsonl`. */
export type MetricsLine = Record<string, number>;

/** The part of a datum the log reads: its loss inputs. */
export interface WeightedDatum {
  /** Per-token loss inputs; `weights` is summed for `loss:mean`. */
  lossFnInputs: Readonly<Record<string, unknown>>;
}

function weightSum(v: unknown): number | undefined {
  const arr = v !== null && typeof v === "object" && "data" in v
    ? (v as { data: unknown }).data
    : v;
  if (
    !(Array.isArray(arr) || arr instanceof Float32Array ||
      arr instanceof Int32Array)
  ) return undefined;
  let s = 0;
  const a = arr as ArrayLike<number>;
  for (let i = 0; i < a.length; i++) s += Number(a[i]);
  return s;
}

function merge(
  into: Record<string, number>,
  counts: Record<string, number>,
  metrics: Readonly<Record<string, number>>,
): void {
  for (const [k, v] of Object.entries(metrics)) {
    const reduction = k.slice(k.lastIndexOf(":") + 1);
    const had = into[k];
    counts[k] = (counts[k] ?? 0) + 1;
    if (had === undefined) into[k] = v;
    else if (reduction === "sum") into[k] = had + v;
    else if (reduction === "max") into[k] = Math.max(had, v);
    else if (reduction === "min") into[k] = Math.min(had, v);
    else if (reduction === "mean") into[k] = had + (v - had) / counts[k];
    else into[k] = v;
  }
}

/** The metrics of the optimizer step in progress, and its line once it is taken. */
export class StepMetrics {
  #fb: Record<string, number> = {};
  #counts: Record<string, number> = {};
  #calls = 0;
  #sequences = 0;
  #weights: number | undefined = 0;
  #fbSeconds = 0;

  /**
   * A forward_backward's reply, the data it was given and the seconds it took.
   */
  forwardBackward(
    out: { metrics: Readonly<Record<string, number>> },
    data: readonly WeightedDatum[],
    seconds: number,
  ): void {
    merge(this.#fb, this.#counts, out.metrics);
    this.#calls++;
    this.#sequences += data.length;
    this.#fbSeconds += seconds;
    for (const d of data) {
      const w = weightSum(d.lossFnInputs.weights);
      this.#weights = w === undefined || this.#weights === undefined
        ? undefined
        : this.#weights + w;
    }
  }

  /** The line of the step `out` replies to, taken in `seconds`; starts the next step. */
  optimStep(
    out: { metrics: Readonly<Record<string, number>> },
    seconds: number,
  ): MetricsLine {
    const m = out.metrics;
    const line: MetricsLine = { step: m["step:max"] };
    Object.assign(line, this.#fb);
    const loss = this.#fb["loss:sum"];
    if (
      loss !== undefined && this.#weights !== undefined && this.#weights !== 0
    ) {
      line["loss:mean"] = loss / this.#weights;
    }
    if (m["learning_rate:mean"] !== undefined) {
      line["learning_rate"] = m["learning_rate:mean"];
    }
    if (m["grad_norm:mean"] !== undefined) {
      line["grad_norm"] = m["grad_norm:mean"];
    }
    line["num_sequences"] = this.#sequences;
    if (this.#fb["num_tokens:sum"] !== undefined) {
      line["num_tokens"] = this.#fb["num_tokens:sum"];
    }
    line["forward_backward_calls"] = this.#calls;
    line["time/forward_backward"] = this.#fbSeconds;
    line["time/optim_step"] = seconds;
    line["time/total"] = this.#fbSeconds + seconds;
    this.#fb = {};
    this.#counts = {};
    this.#calls = 0;
    this.#sequences = 0;
    this.#weights = 0;
    this.#fbSeconds = 0;
    return line;
  }
}

/**
 * A run's `metrics.jsonl` file: {@linkcode StepMetrics} whose lines are
 * appended to `path` (its folder made on first write), in the order the
 * steps complete.
 */
export class MetricsLog {
  readonly #step = new StepMetrics();
  #writing: Promise<void> = Promise.resolve();
  #dirMade = false;

  /** The log at `path`. */
  constructor(readonly path: string) {}

  /** A forward_backward's reply, its data and the seconds it took. */
  forwardBackward(
    out: { metrics: Readonly<Record<string, number>> },
    data: readonly WeightedDatum[],
    seconds: number,
  ): void {
    this.#step.forwardBackward(out, data, seconds);
  }

  /** An optimizer step's reply and the seconds it took: its line is appended. */
  optimStep(
    out: { metrics: Readonly<Record<string, number>> },
    seconds: number,
  ): Promise<MetricsLine> {
    const line = this.#step.optimStep(out, seconds);
    const text = JSON.stringify(line) + "\n";
    // A failed write fails its own step's promise, not the later ones.
    this.#writing = this.#writing.catch(() => {}).then(async () => {
      if (!this.#dirMade) {
        const slash = this.path.lastIndexOf("/");
        if (slash > 0) {
          await Deno.mkdir(this.path.slice(0, slash), { recursive: true });
        }
        this.#dirMade = true;
      }
      await Deno.writeTextFile(this.path, text, { append: true });
    });
    return this.#writing.then(() => line);
  }

  /** Resolves once every line so far is written. */
  flushed(): Promise<void> {
    return this.#writing.catch(() => {});
  }
}
