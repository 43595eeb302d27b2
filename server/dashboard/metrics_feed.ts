/**
 * Each run's metrics lines as they are recorded, for whoever listens (the
 * dashboard's event stream): the gateway's {@linkcode TrainingObserver}
 * publishes a run's line once it is written to its `metrics.jsonl`, so a
 * listener that then reads the file finds the line there too. It also keeps
 * each run's last line (the run list's last step and loss).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricsFeed } from "./metrics_feed.ts";
 * const feed = new MetricsFeed();
 * const seen: number[] = [];
 * const stop = feed.subscribe("run-1", (line) => seen.push(line.step));
 * feed.publish("run-1", { step: 1, "loss:mean": 2.5 });
 * feed.publish("run-2", { step: 1 });
 * stop();
 * feed.publish("run-1", { step: 2 });
 * assert.deepEqual(seen, [1]);
 * assert.equal(feed.last("run-1")?.step, 2);
 * assert.equal(feed.listening(), 0);
 * ```
 *
 * @module
 */
import type { MetricsLine } from "../../client/metrics_log.ts";

/** Called with each new line of a run. */
export type MetricsListener = (line: MetricsLine) => void;

interface Listener {
  line: MetricsListener;
  end?: () => void;
}

/** Runs' new metrics lines, published to their listeners. */
export class MetricsFeed {
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #last = new Map<string, MetricsLine>();
  #closed = false;

  /** Run `runId`'s new `line`: kept as its last, then given to its listeners. */
  publish(runId: string, line: MetricsLine): void {
    this.#last.set(runId, line);
    for (const l of this.#listeners.get(runId) ?? []) {
      try {
        l.line(line);
      } catch (e) {
        console.error(`bios gateway: a metrics listener of ${runId}:`, e);
      }
    }
  }

  /**
   * Call `fn` with each line of run `runId` from now on, and `end` when the
   * feed closes (at once if it is closed); returns the unsubscribe.
   */
  subscribe(
    runId: string,
    fn: MetricsListener,
    end?: () => void,
  ): () => void {
    if (this.#closed) {
      end?.();
      return () => {};
    }
    let set = this.#listeners.get(runId);
    if (!set) {
      set = new Set();
      this.#listeners.set(runId, set);
    }
    const listener: Listener = { line: fn, end };
    set.add(listener);
    return () => {
      const s = this.#listeners.get(runId);
      if (!s) return;
      s.delete(listener);
      if (s.size === 0) this.#listeners.delete(runId);
    };
  }

  /**
   * End every listener (each one's `end`) and refuse new ones: the gateway
   * is stopping, and open event streams must end for its listener to drain.
   */
  close(): void {
    this.#closed = true;
    const all = [...this.#listeners.values()].flatMap((s) => [...s]);
    this.#listeners.clear();
    for (const l of all) l.end?.();
  }

  /** The last line published for run `runId`, if any. */
  last(runId: string): MetricsLine | undefined {
    return this.#last.get(runId);
  }

  /** How many listeners there are: of run `runId`, or of every run. */
  listening(runId?: string): number {
    if (runId !== undefined) return this.#listeners.get(runId)?.size ?? 0;
    let n = 0;
    for (const s of this.#listeners.values()) n += s.size;
    return n;
  }
}
