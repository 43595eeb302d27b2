/**
 * A small Prometheus client: counters, gauges and histograms with labels,
 * and the text exposition format (version 0.0.4) they are scraped in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricsRegistry } from "./registry.ts";
 * const m = new MetricsRegistry();
 * const req = m.counter("app_requests_total", "Requests.", ["route"]);
 * req.inc({ route: "/a" });
 * req.inc({ route: "/a" }, 2);
 * assert.match(m.render(), /^app_requests_total\{route="\/a"\} 3$/m);
 * ```
 *
 * @module
 */

/** The content type of {@linkcode MetricsRegistry.render}'s text. */
export const EXPOSITION_CONTENT_TYPE =
  "text/plain; version=0.0.4; charset=utf-8";

/** Label values by label name. */
export type Labels = Readonly<Record<string, string>>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value as the exposition format writes it: `\`, `"` and newlines escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** A sample value as the exposition format writes it (`+Inf`, `-Inf`, `NaN`). */
export function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return Number.isNaN(v) ? "NaN" : String(v);
}

function labelText(
  names: readonly string[],
  values: readonly string[],
): string {
  if (names.length === 0) return "";
  return `{${
    names.map((n, i) => `${n}="${escapeLabelValue(values[i])}"`).join(",")
  }}`;
}

/** What every metric kind shares: its name, help, label names and series. */
abstract class Metric<S> {
  readonly #series = new Map<string, { values: string[]; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    for (const l of labelNames) {
      if (!LABEL.test(l) || l.startsWith("__") || l === "le") {
        throw new Error(`bad label name ${l} on ${name}`);
      }
    }
  }

  abstract readonly type: "counter" | "gauge" | "histogram";
  protected abstract fresh(): S;
  protected abstract lines(prefix: string, values: string[], s: S): string[];

  /** The series of `labels` (made on first use). */
  protected series(labels: Labels): S {
    const values = this.labelNames.map((n) => {
      const v = labels[n];
      if (v === undefined) throw new Error(`${this.name} needs label ${n}`);
      return v;
    });
    const extra = Object.keys(labels).find((k) => !this.labelNames.includes(k));
    if (extra !== undefined) {
      throw new Error(`${this.name} has no label ${extra}`);
    }
    const key = JSON.stringify(values);
    let s = this.#series.get(key);
    if (!s) {
      s = { values, state: this.fresh() };
      this.#series.set(key, s);
    }
    return s.state;
  }

  /** Forget every series. */
  reset(): void {
    this.#series.clear();
  }

  /** The metric's `# HELP`, `# TYPE` and sample lines. */
  render(): string[] {
    const help = this.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
    const out = [
      `# HELP ${this.name} ${help}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    for (const { values, state } of this.#series.values()) {
      out.push(...this.lines(this.name, values, state));
    }
    return out;
  }
}

/** A value that only goes up. */
export class Counter extends Metric<{ v: number }> {
  /** `counter`. */
  readonly type = "counter";
  protected fresh(): { v: number } {
    return { v: 0 };
  }
  protected lines(p: string, values: string[], s: { v: number }): string[] {
    return [`${p}${labelText(this.labelNames, values)} ${formatValue(s.v)}`];
  }

  /** Add `by` (≥ 0) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter cannot go down`);
    this.series(labels).v += by;
  }

  /** The series' value now (0 before its first increment). */
  get(labels: Labels = {}): number {
    return this.series(labels).v;
  }
}

/** A value that goes up and down; set now or read at scrape time. */
export class Gauge extends Metric<{ v: number }> {
  /** `gauge`. */
  readonly type = "gauge";
  protected fresh(): { v: number } {
    return { v: 0 };
  }
  protected lines(p: string, values: string[], s: { v: number }): string[] {
    return [`${p}${labelText(this.labelNames, values)} ${formatValue(s.v)}`];
  }

  /** Set the series of `labels` to `v`. */
  set(labels: Labels, v: number): void {
    this.series(labels).v = v;
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into fixed buckets (cumulative `le`), with their sum and count. */
export class Histogram extends Metric<HistogramState> {
  /** `histogram`. */
  readonly type = "histogram";
  /** Upper bounds, ascending (`+Inf` implied). */
  readonly buckets: readonly number[];

  /** A histogram with `buckets` as its upper bounds. */
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    if (buckets.some((b, i) => i > 0 && b <= buckets[i - 1])) {
      throw new Error(`${name}: buckets must ascend`);
    }
    this.buckets = buckets.filter((b) => b !== Infinity);
  }

  protected fresh(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  protected lines(p: string, values: string[], s: HistogramState): string[] {
    const names = [...this.labelNames, "le"];
    const out = this.buckets.map((b, i) =>
      `${p}_bucket${labelText(names, [...values, formatValue(b)])} ${
        s.counts[i]
      }`
    );
    out.push(`${p}_bucket${labelText(names, [...values, "+Inf"])} ${s.count}`);
    out.push(
      `${p}_sum${labelText(this.labelNames, values)} ${formatValue(s.sum)}`,
    );
    out.push(`${p}_count${labelText(this.labelNames, values)} ${s.count}`);
    return out;
  }

  /** Count `v` in the series of `labels`. */
  observe(labels: Labels, v: number): void {
    const s = this.series(labels);
    for (let i = 0; i < this.buckets.length; i++) {
      if (v <= this.buckets[i]) s.counts[i]++;
    }
    s.sum += v;
    s.count++;
  }

  /** Observations of the series so far. */
  count(labels: Labels): number {
    return this.series(labels).count;
  }
}

/** The metrics of one process and their text exposition. */
export class MetricsRegistry {
  readonly #metrics = new Map<string, Metric<unknown>>();
  readonly #collectors: (() => void)[] = [];

  #add<M extends Metric<unknown>>(m: M): M {
    if (this.#metrics.has(m.name)) {
      throw new Error(`metric ${m.name} is registered twice`);
    }
    this.#metrics.set(m.name, m);
    return m;
  }

  /** A new counter. */
  counter(name: string, help: string, labelNames: string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  /** A new gauge. */
  gauge(name: string, help: string, labelNames: string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  /** A new histogram with fixed `buckets`. */
  histogram(
    name: string,
    help: string,
    labelNames: string[],
    buckets: readonly number[],
  ): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets));
  }

  /** Run `fn` before each render (to set gauges read at scrape time). */
  onCollect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  /** Every metric in the text exposition format, ending in a newline. */
  render(): string {
    for (const fn of this.#collectors) fn();
    const lines: string[] = [];
    for (const m of this.#metrics.values()) lines.push(...m.render());
    return lines.join("\n") + "\n";
  }
}
