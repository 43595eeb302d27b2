/**
 * The gateway's futures: every operation answers `{"request_id"}` at once
 * and its result is fetched by `retrieve_future`, which holds the request
 * open until the result is there or a hold time passes (the SDK re-polls at
 * once, so an immediate "not yet" would busy-loop it). A future belongs to
 * the tenant that made it; another tenant's is unknown. A settled future is
 * kept for a while after it settles (the SDK may poll again after a lost
 * reply), then forgotten.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FutureStore } from "./futures.ts";
 * const store = new FutureStore({ holdMs: 50 });
 * const id = store.add("t1", Promise.resolve({ kind: "json", value: { ok: 1 } }));
 * assert.deepEqual(await store.retrieve(id, "t1"), { state: "done", result: { kind: "json", value: { ok: 1 } } });
 * assert.deepEqual(await store.retrieve(id, "t2"), { state: "unknown" });
 * store.close();
 * ```
 *
 * @module
 */
import type { FutureResult } from "./tinker/render.ts";

/** How long `retrieve_future` holds a request before "try again". */
export const DEFAULT_HOLD_MS = 40_000;

/** How long a settled future is kept. */
export const DEFAULT_KEEP_MS = 30 * 60_000;

/** What a retrieve found. */
export type Retrieved =
  | { state: "unknown" }
  | { state: "pending" }
  | { state: "done"; result: FutureResult }
  | { state: "failed"; error: unknown };

interface Entry {
  tenant: string;
  promise: Promise<void>;
  outcome?: { ok: true; result: FutureResult } | { ok: false; error: unknown };
  settledAt?: number;
}

/** Options of {@linkcode FutureStore}. */
export interface FutureStoreOptions {
  /** Longest hold of a retrieve. @default {40 000 ms} */
  holdMs?: number;
  /** How long a settled future is kept. @default {30 min} */
  keepMs?: number;
}

/** The futures of one gateway. */
export class FutureStore {
  readonly #entries = new Map<string, Entry>();
  readonly #holdMs: number;
  readonly #keepMs: number;
  readonly #sweeper: ReturnType<typeof setInterval>;
  readonly #closing = new AbortController();

  /** A store; a timer forgets settled futures past their keep time. */
  constructor(opts: FutureStoreOptions = {}) {
    this.#holdMs = opts.holdMs ?? DEFAULT_HOLD_MS;
    this.#keepMs = opts.keepMs ?? DEFAULT_KEEP_MS;
    this.#sweeper = setInterval(
      () => this.#sweep(),
      Math.min(60_000, this.#keepMs),
    );
    Deno.unrefTimer(Number(this.#sweeper));
  }

  /** Futures held now (pending and kept). */
  get size(): number {
    return this.#entries.size;
  }

  /** Futures not settled yet (the queue depth). */
  get pending(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (!e.outcome) n++;
    return n;
  }

  /**
   * A new future of `tenant` for `work`; returns its request id.
   *
   * @param tenant the tenant it belongs to
   * @param work the operation's result
   */
  add(tenant: string, work: Promise<FutureResult>): string {
    const id = `req-${crypto.randomUUID()}`;
    const entry: Entry = {
      tenant,
      promise: work.then(
        (result) => {
          entry.outcome = { ok: true, result };
        },
        (error) => {
          entry.outcome = { ok: false, error };
        },
      ).finally(() => {
        entry.settledAt = Date.now();
      }),
    };
    this.#entries.set(id, entry);
    return id;
  }

  /**
   * The future's outcome once settled, or "pending" after the hold time (or
   * when `signal` aborts: the caller went away); "unknown" for an id that is
   * not this tenant's or no longer kept.
   */
  async retrieve(
    id: string,
    tenant: string,
    signal?: AbortSignal,
  ): Promise<Retrieved> {
    const e = this.#entries.get(id);
    if (!e || e.tenant !== tenant) return { state: "unknown" };
    if (!e.outcome) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let onAbort: (() => void) | undefined;
      await Promise.race([
        e.promise,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.#holdMs);
          onAbort = () => resolve();
          signal?.addEventListener("abort", onAbort, { once: true });
          this.#closing.signal.addEventListener("abort", onAbort, {
            once: true,
          });
        }),
      ]);
      clearTimeout(timer);
      if (onAbort) {
        signal?.removeEventListener("abort", onAbort);
        this.#closing.signal.removeEventListener("abort", onAbort);
      }
    }
    const o = e.outcome;
    if (!o) return { state: "pending" };
    return o.ok
      ? { state: "done", result: o.result }
      : { state: "failed", error: o.error };
  }

  #sweep(): void {
    const cutoff = Date.now() - this.#keepMs;
    for (const [id, e] of this.#entries) {
      if (e.settledAt !== undefined && e.settledAt < cutoff) {
        this.#entries.delete(id);
      }
    }
  }

  /** Stop the sweeper, and answer every held retrieve now ("pending"). */
  close(): void {
    this.#closing.abort();
    clearInterval(this.#sweeper);
  }
}
