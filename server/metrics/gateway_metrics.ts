/**
 * The gateway's Prometheus metrics (served at `/metrics`): requests and
 * their latency per route, errors by category and route, training steps and
 * tokens, samples and generated tokens, and, read at scrape time, futures
 * pending and the sessions, runs and samplers alive.
 *
 * Labels hold route patterns (`/api/v1/samplers/:id`, never an id), methods,
 * statuses, operation kinds and error categories: no tenant, run or key.
 *
 * @module
 */
import type {
  ForwardBackwardOutput,
  SampleResponse,
} from "../../protocol/types/responses.ts";
import {
  type Counter,
  type Gauge,
  type Histogram,
  MetricsRegistry,
} from "./registry.ts";

/** Latency buckets of every route, in seconds (a long poll holds up to 40 s). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];

/** An error's category in `bios_errors_total`. */
export type ErrorCategory =
  | "user"
  | "server"
  | "auth"
  | "not_found"
  | "rate_limit"
  | "too_large";

/** The category of an HTTP status ≥ 400. */
export function categoryOfStatus(status: number): ErrorCategory {
  if (status === 401 || status === 403) return "auth";
  if (status === 404) return "not_found";
  if (status === 413) return "too_large";
  if (status === 429) return "rate_limit";
  return status >= 500 ? "server" : "user";
}

/** What the gateway reads at scrape time. */
export interface GatewayGauges {
  /** Futures not settled yet. */
  futuresPending(): number;
  /** Sessions, runs and samplers held. */
  stats(): { sessions: number; runs: number; samplers: number };
}

/** The gateway's metrics. */
export class GatewayMetrics {
  /** The registry they render from. */
  readonly registry: MetricsRegistry = new MetricsRegistry();
  /** Requests answered, by method, route and status. */
  readonly requests: Counter;
  /** Request latency, by method and route. */
  readonly latency: Histogram;
  /** Refusals and failed operations, by route and category. */
  readonly errors: Counter;
  /** Training operations that succeeded, by kind. */
  readonly trainingOps: Counter;
  /** Optimizer steps taken. */
  readonly trainingSteps: Counter;
  /** Tokens through forward_backward. */
  readonly tokensTrained: Counter;
  /** Sequences generated. */
  readonly samplesGenerated: Counter;
  /** Tokens generated. */
  readonly tokensGenerated: Counter;
  readonly #pending: Gauge;
  readonly #alive: Gauge;

  /** The metrics; `gauges` is read at each scrape. */
  constructor(gauges?: GatewayGauges) {
    const r = this.registry;
    this.requests = r.counter(
      "bios_http_requests_total",
      "HTTP requests answered, by method, route pattern and status.",
      ["method", "route", "status"],
    );
    this.latency = r.histogram(
      "bios_http_request_duration_seconds",
      "Time to answer an HTTP request, by method and route pattern.",
      ["method", "route"],
      LATENCY_BUCKETS,
    );
    this.errors = r.counter(
      "bios_errors_total",
      "Refused requests (stage=request) and failed operations (stage=future), by route and category.",
      ["route", "category", "stage"],
    );
    this.trainingOps = r.counter(
      "bios_training_operations_total",
      "Training operations completed, by kind.",
      ["op"],
    );
    this.trainingSteps = r.counter(
      "bios_training_steps_total",
      "Optimizer steps taken.",
    );
    this.tokensTrained = r.counter(
      "bios_tokens_trained_total",
      "Tokens through forward_backward (num_tokens:sum).",
    );
    this.samplesGenerated = r.counter(
      "bios_samples_generated_total",
      "Sequences generated.",
    );
    this.tokensGenerated = r.counter(
      "bios_tokens_generated_total",
      "Tokens generated.",
    );
    this.#pending = r.gauge(
      "bios_futures_pending",
      "Futures not settled yet (the queue depth).",
    );
    this.#alive = r.gauge(
      "bios_alive",
      "Sessions, training runs and samplers held by the gateway.",
      ["kind"],
    );
    if (gauges) {
      r.onCollect(() => {
        this.#pending.set({}, gauges.futuresPending());
        const s = gauges.stats();
        this.#alive.set({ kind: "session" }, s.sessions);
        this.#alive.set({ kind: "run" }, s.runs);
        this.#alive.set({ kind: "sampler" }, s.samplers);
      });
    }
  }

  /** A request answered with `status` after `seconds`. */
  request(method: string, route: string, status: number, seconds: number) {
    this.requests.inc({ method, route, status: String(status) });
    this.latency.observe({ method, route }, seconds);
    if (status >= 400) {
      this.errors.inc({
        route,
        category: categoryOfStatus(status),
        stage: "request",
      });
    }
  }

  /** A training operation of `kind` (the wire's route name) that completed. */
  trainingOp(kind: string, value: unknown): void {
    this.trainingOps.inc({ op: kind });
    if (kind === "optim_step") this.trainingSteps.inc();
    if (kind === "forward_backward") {
      const tokens = (value as ForwardBackwardOutput).metrics["num_tokens:sum"];
      if (Number.isFinite(tokens)) this.tokensTrained.inc({}, tokens);
    }
  }

  /** A sampling request that completed. */
  sampled(out: SampleResponse): void {
    this.samplesGenerated.inc({}, out.sequences.length);
    let n = 0;
    for (const s of out.sequences) n += s.tokens.length;
    this.tokensGenerated.inc({}, n);
  }

  /** An operation started at `route` whose future failed. */
  failed(route: string, category: "user" | "server"): void {
    this.errors.inc({ route, category, stage: "future" });
  }

  /** The exposition text. */
  render(): string {
    return this.registry.render();
  }
}
