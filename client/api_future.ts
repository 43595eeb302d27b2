/**
 * APIFuture: what every training operation returns at once. It is awaitable
 * (`await fut`) and has `.result(timeoutMs?)`, as the anchor's futures do.
 *
 * @module
 */

/** A future's wait ran out before the result came. */
export class FutureTimeoutError extends Error {
  /**
   * The wait ran out.
   *
   * @param ms the timeout that passed
   */
  constructor(ms: number) {
    super(
      `result() timed out after ${ms} ms (the operation may still complete)`,
    );
    this.name = "FutureTimeoutError";
  }
}

/**
 * The result of an operation that was submitted and may still be running.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { APIFuture } from "./api_future.ts";
 * const f = new APIFuture(Promise.resolve(42));
 * assert.equal(await f, 42);
 * assert.equal(await f.result(), 42);
 * ```
 */
export class APIFuture<T> implements PromiseLike<T> {
  readonly #p: Promise<T>;

  /**
   * Wrap the promise of an operation's result.
   *
   * @param p the promise of the operation's result
   */
  constructor(p: Promise<T>) {
    this.#p = p;
    // The caller may never await: don't let a failure become an unhandled rejection here.
    p.catch(() => {});
  }

  /** Wait for the result; with `timeoutMs`, reject with FutureTimeoutError past it. */
  result(timeoutMs?: number): Promise<T> {
    if (timeoutMs === undefined) return this.#p;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new FutureTimeoutError(timeoutMs)),
        timeoutMs,
      );
    });
    return Promise.race([this.#p, timeout]).finally(() => clearTimeout(timer));
  }

  /** Makes the future awaitable. */
  then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#p.then(onfulfilled, onrejected);
  }
}
