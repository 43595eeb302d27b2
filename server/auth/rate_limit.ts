/**
 * A per-tenant rate limit: a token bucket of `burst` requests refilled at
 * `perSecond`. A request over it is answered 429 with `Retry-After` (the
 * SDK backs off and retries).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RateLimiter } from "./rate_limit.ts";
 * const rl = new RateLimiter({ perSecond: 1, burst: 2 });
 * assert.equal(rl.take("a", 0), 0);
 * assert.equal(rl.take("a", 0), 0);
 * assert.equal(rl.take("a", 0), 1); // one second until a token is back
 * assert.equal(rl.take("b", 0), 0); // another tenant has its own bucket
 * ```
 *
 * @module
 */

/** Options of {@linkcode RateLimiter}. */
export interface RateLimitOptions {
  /** Sustained requests per second per tenant (> 0). */
  perSecond: number;
  /** Requests a tenant may make at once (≥ 1). */
  burst: number;
}

/** Token buckets, one per tenant. */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  /** A limiter of `opts.perSecond` per tenant, bursts of `opts.burst`. */
  constructor(readonly opts: RateLimitOptions) {
    if (!(opts.perSecond > 0) || !(opts.burst >= 1)) {
      throw new Error(
        `a rate limit needs perSecond > 0 and burst ≥ 1: got ${opts.perSecond}, ${opts.burst}`,
      );
    }
  }

  /**
   * Take one request's token for `tenant`: 0 when allowed, else the whole
   * seconds until a token is back (for `Retry-After`).
   *
   * @param now the time in ms (for tests)
   */
  take(tenant: string, now: number = performance.now()): number {
    const { perSecond, burst } = this.opts;
    let b = this.#buckets.get(tenant);
    if (!b) {
      b = { tokens: burst, at: now };
      this.#buckets.set(tenant, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / perSecond));
  }
}
