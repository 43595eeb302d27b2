/**
 * What the gateway learns from each operation's outcome: the counters of
 * {@linkcode GatewayMetrics} and each run's `metrics.jsonl`
 * (client/metrics_log.ts) at `<runsDir>/<run>/metrics.jsonl`.
 *
 * An operation is counted once per `seq` (a retried submission is answered
 * from the record and not counted again). Its time is the gateway's view of
 * the trainer's work: from when the trainer could start it (its submission,
 * or the reply to the run's previous operation if that came later: a run's
 * operations run one at a time) to its reply.
 *
 * @module
 */
import { MetricsLog, type WeightedDatum } from "../../client/metrics_log.ts";
import type {
  ForwardBackwardOutput,
  OptimStepResponse,
  SampleResponse,
} from "../../protocol/types/responses.ts";
import { MetricsFeed } from "../dashboard/metrics_feed.ts";
import { failureJson } from "../errors.ts";
import type { GatewayMetrics } from "./gateway_metrics.ts";

/** Where the Tinker wire's routes are mounted (the error counter's route label). */
const WIRE_PREFIX = "/api/v1";

interface RunClock {
  /** When the reply to its last operation came (performance.now()). */
  lastDone: number;
  /** Highest seq counted. */
  counted: number;
  log?: MetricsLog;
}

/** The path of run `runId`'s `metrics.jsonl` under `runsDir`. */
export function metricsLogPath(runsDir: string, runId: string): string {
  return `${runsDir}/${runId}/metrics.jsonl`;
}

/** Counts the gateway's operations and writes each run's metrics.jsonl. */
export class TrainingObserver {
  /** Each run's lines once written (the dashboard's live stream). */
  readonly feed: MetricsFeed = new MetricsFeed();
  readonly #runs = new Map<string, RunClock>();

  /**
   * @param metrics the counters to move
   * @param runsDir where runs' metrics.jsonl files go; none without it
   */
  constructor(readonly metrics: GatewayMetrics, readonly runsDir?: string) {}

  #clock(runId: string): RunClock {
    let c = this.#runs.get(runId);
    if (!c) {
      c = {
        lastDone: 0,
        counted: 0,
        log: this.runsDir !== undefined
          ? new MetricsLog(metricsLogPath(this.runsDir, runId))
          : undefined,
      };
      this.#runs.set(runId, c);
    }
    return c;
  }

  /**
   * A training operation submitted now: `reply` is the trainer's, `result`
   * the future's (which also fails for a refused body).
   *
   * @param kind the wire's route name (`forward_backward`, `optim_step`, …)
   * @param call the trainer request (its `data` feeds `loss:mean`)
   */
  trainingOp(
    runId: string,
    kind: string,
    seq: number,
    call: Record<string, unknown>,
    reply: Promise<unknown>,
    result: Promise<unknown>,
  ): void {
    const submitted = performance.now();
    const settle = (): { clock: RunClock; seconds: number } | null => {
      const clock = this.#clock(runId);
      const now = performance.now();
      const seconds = (now - Math.max(submitted, clock.lastDone)) / 1000;
      clock.lastDone = Math.max(clock.lastDone, now);
      if (seq <= clock.counted) return null;
      clock.counted = seq;
      return { clock, seconds };
    };
    Promise.all([reply, result]).then(([value]) => {
      const s = settle();
      if (!s) return;
      this.metrics.trainingOp(kind, value);
      const log = s.clock.log;
      if (!log) return;
      if (kind === "forward_backward") {
        log.forwardBackward(
          value as ForwardBackwardOutput,
          (call.data ?? []) as WeightedDatum[],
          s.seconds,
        );
      } else if (kind === "optim_step") {
        log.optimStep(value as OptimStepResponse, s.seconds).then(
          (line) => this.feed.publish(runId, line),
          (e) => console.error(`bios gateway: writing ${log.path}:`, e),
        );
      }
    }, (e) => {
      if (settle()) {
        this.metrics.failed(`${WIRE_PREFIX}/${kind}`, failureJson(e).category);
      }
    });
  }

  /** A sampling request: counted once `work` settles. */
  sample(work: Promise<{ value: SampleResponse }>): void {
    work.then(
      (r) => this.metrics.sampled(r.value),
      (e) =>
        this.metrics.failed(`${WIRE_PREFIX}/asample`, failureJson(e).category),
    );
  }

  /** The path of run `runId`'s metrics.jsonl, if this gateway writes one. */
  logPath(runId: string): string | undefined {
    return this.runsDir === undefined
      ? undefined
      : metricsLogPath(this.runsDir, runId);
  }

  /** Resolves once every line started so far is written. */
  async flushed(): Promise<void> {
    await Promise.all([...this.#runs.values()].map((c) => c.log?.flushed()));
  }
}
