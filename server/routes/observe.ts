/**
 * What operators read: `GET /metrics` (Prometheus text) and
 * `GET /openapi.json` (the API's description), both outside `/api/v1` and
 * its tenant keys; and the per-request metrics middleware.
 *
 * `/metrics` holds no tenant's data (its labels are route patterns, methods,
 * statuses, operation kinds and error categories) but says how busy the
 * service is, so it is not public: with `--metrics-key KEY` it takes
 * `Authorization: Bearer KEY` from anywhere; without one, only callers on
 * the loopback interface (a scraper on the same host, or a reverse proxy
 * that does not forward `/metrics`). A tenant's API key does not open it.
 *
 * @module
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { getConnInfo } from "hono/deno";
import { matchedRoutes } from "hono/route";
import { HttpError } from "../errors.ts";
import type { GatewayEnv } from "../http.ts";
import { EXPOSITION_CONTENT_TYPE } from "../metrics/registry.ts";
import type { GatewayMetrics } from "../metrics/gateway_metrics.ts";
import { describeRoute } from "../openapi/describe.ts";
import { type OpenApiDocument, openApiDocument } from "../openapi/document.ts";

/** The route label of a request that matched no route. */
export const UNMATCHED_ROUTE = "unmatched";

/**
 * Middleware counting every request in `metrics`: its method, the pattern
 * of the route it matched (`unmatched` for none), status and latency.
 */
export function requestMetrics(
  metrics: GatewayMetrics,
): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      const route = matchedRoutes(c).findLast((r) => r.method !== "ALL")
        ?.path ?? UNMATCHED_ROUTE;
      metrics.request(
        c.req.method,
        route,
        c.res.status,
        (performance.now() - start) / 1000,
      );
    }
  };
}

async function sha256(s: string): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)),
  );
}

/** Whether the caller may read `/metrics` (see the module's note). */
async function metricsAllowed(
  c: Context<GatewayEnv>,
  keyHash: Uint8Array | null,
): Promise<boolean> {
  if (keyHash !== null) {
    const m = c.req.header("authorization")?.match(/^Bearer\s+(\S+)$/i);
    if (!m) return false;
    const h = await sha256(m[1]);
    let diff = 0;
    for (let i = 0; i < 32; i++) diff |= h[i] ^ keyHash[i];
    return diff === 0;
  }
  // Deno.serve passes the connection's address; an in-process caller
  // (app.request, no connection) has none and is this process.
  const env = c.env as { remoteAddr?: Deno.NetAddr } | undefined;
  if (!env?.remoteAddr) return true;
  const host = getConnInfo(c).remote.address ?? "";
  return host === "::1" || /^127\./.test(host) ||
    /^::ffff:127\./.test(host);
}

/** Options of {@linkcode observeRoutes}. */
export interface ObserveOptions {
  /** The gateway's metrics. */
  metrics: GatewayMetrics;
  /** The key `/metrics` takes; null: loopback callers only. */
  metricsKey: string | null;
  /** The app whose routes `/openapi.json` describes (read on first request). */
  // deno-lint-ignore no-explicit-any
  app: Hono<any, any, any>;
}

/** `/metrics` and `/openapi.json`, registered on `r`. */
export function observeRoutes(r: Hono<GatewayEnv>, opts: ObserveOptions) {
  const keyHash = opts.metricsKey === null ? null : sha256(opts.metricsKey);
  r.get("/metrics", async (c) => {
    if (!await metricsAllowed(c, keyHash === null ? null : await keyHash)) {
      throw new HttpError(
        401,
        keyHash === null
          ? "/metrics is served to loopback callers only (start the gateway with --metrics-key to scrape it from elsewhere)"
          : "/metrics needs Authorization: Bearer <the --metrics-key>",
      );
    }
    return c.body(opts.metrics.render(), 200, {
      "Content-Type": EXPOSITION_CONTENT_TYPE,
    });
  });
  describeRoute(r, "get", "/metrics", {
    summary: "Prometheus metrics of the gateway",
    description:
      "Text exposition format 0.0.4. Open to loopback callers, or to any caller with Authorization: Bearer <--metrics-key>; tenant API keys do not open it.",
    response: "The metrics, as text",
    responseType: EXPOSITION_CONTENT_TYPE,
    tags: ["operations"],
    auth: false,
  });
  let doc: OpenApiDocument | undefined;
  r.get("/openapi.json", (c) => {
    doc ??= openApiDocument(opts.app, {
      title: "Bios gateway",
      version: "0.1.0",
      description:
        "The Tinker wire (SDK 0.24 JSON, 0.25 protobuf for forward_backward and sample) under /api/v1, and the gateway's own routes.",
    });
    return c.json(doc);
  });
  describeRoute(r, "get", "/openapi.json", {
    summary: "This document",
    response: "The OpenAPI 3.1 document of every route",
    tags: ["operations"],
    auth: false,
  });
}
