/**
 * The gateway's hono app: `/api/v1/healthz` and a checkpoint archive's
 * URL (`/api/v1/checkpoint_archives/<token>`, a capability handed out by
 * `…/archive`) open to all; every other route behind an API key
 * (`X-API-Key`, as the Tinker SDK sends it, or
 * `Authorization: Bearer`), a per-tenant rate limit (429 with Retry-After)
 * and a body size limit (413); then the Tinker routes. Every refusal is
 * JSON: `{"error", "field"?}`.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { InvalidArgumentError, NotFoundError } from "../runtime/errors.ts";
import { allowedMethods } from "./allowed_methods.ts";
import type { KeyRing } from "./auth/keys.ts";
import type { RateLimiter } from "./auth/rate_limit.ts";
import { biosErrorJson, HttpError, isUserError } from "./errors.ts";
import type { Gateway } from "./gateway.ts";
import type { GatewayEnv } from "./http.ts";
import { describeRoute } from "./openapi/describe.ts";
import { biosExtraRoutes } from "./routes/bios_extras.ts";
import { dashboardApiRoutes, dashboardPageRoutes } from "./routes/dashboard.ts";
import { futureRoutes } from "./routes/futures.ts";
import { observeRoutes, requestMetrics } from "./routes/observe.ts";
import { openaiRoutes } from "./routes/openai.ts";
import { runMetricsRoutes } from "./routes/run_metrics.ts";
import { samplingRoutes } from "./routes/sampling.ts";
import { serviceRoutes } from "./routes/service.ts";
import { trainingRoutes } from "./routes/training.ts";
import { weightsRoutes } from "./routes/weights.ts";
import { archiveDownloadRoutes, restRoutes } from "./routes/rest.ts";
import { TinkerRest } from "./tinker_rest.ts";
import { toWireText } from "./tinker/to_bios.ts";

/** The tenant of every caller when the gateway runs without keys. */
export const NO_AUTH_TENANT = "default";

/** Largest request body accepted by default. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Options of {@linkcode createApp}. */
export interface AppOptions {
  /** The state the routes act on. */
  gateway: Gateway;
  /** The API keys; null lets every caller in as {@link NO_AUTH_TENANT} (`--insecure-no-auth`). */
  keys: KeyRing | null;
  /** Per-tenant rate limit; null for none. */
  rateLimit?: RateLimiter | null;
  /** Largest request body in bytes. @default {64 MiB} */
  maxBodyBytes?: number;
  /** The key `/metrics` takes (`--metrics-key`); null or absent: loopback callers only. */
  metricsKey?: string | null;
}

/** The key a request presents, if any. */
function presentedKey(req: Request): string | null {
  const k = req.headers.get("x-api-key");
  if (k !== null) return k;
  const auth = req.headers.get("authorization");
  const m = auth?.match(/^Bearer\s+(\S+)$/i);
  return m ? m[1] : null;
}

/** The app serving the Tinker wire under `/api/v1`. */
export function createApp(opts: AppOptions): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();
  const api = new Hono<GatewayEnv>();
  app.use(requestMetrics(opts.gateway.metrics));
  observeRoutes(app, {
    metrics: opts.gateway.metrics,
    metricsKey: opts.metricsKey ?? null,
    app,
  });
  app.route("/", dashboardPageRoutes());
  api.get("/healthz", (c) => c.json({ status: "ok" }));
  describeRoute(api, "get", "/healthz", {
    summary: "Health check",
    response: '{"status": "ok"}',
    tags: ["service"],
    auth: false,
  });
  // The SDK's REST calls; an archive's URL works without a key (a capability).
  const rest = new TinkerRest(opts.gateway);
  api.route("/", archiveDownloadRoutes(rest));
  api.use(async (c, next) => {
    if (opts.keys === null) {
      c.set("tenant", NO_AUTH_TENANT);
      return await next();
    }
    const key = presentedKey(c.req.raw);
    const tenant = key === null ? null : await opts.keys.tenantOf(key);
    if (tenant === null) {
      throw new HttpError(
        401,
        key === null
          ? "an API key is required (header X-API-Key)"
          : "the API key is not known here",
      );
    }
    c.set("tenant", tenant);
    await next();
  });
  if (opts.rateLimit) {
    const limiter = opts.rateLimit;
    api.use(async (c, next) => {
      const wait = limiter.take(c.get("tenant"));
      if (wait > 0) {
        throw new HttpError(
          429,
          `rate limit of ${limiter.opts.perSecond} requests/s (bursts of ${limiter.opts.burst}) reached: retry in ${wait} s`,
          undefined,
          { "Retry-After": String(wait) },
        );
      }
      await next();
    });
  }
  const maxSize = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  api.use(bodyLimit({
    maxSize,
    onError: (c) =>
      c.json({
        error: `the body is over this gateway's limit of ${maxSize} bytes`,
      }, 413),
  }));
  api.route("/", serviceRoutes(opts.gateway));
  api.route("/", trainingRoutes(opts.gateway));
  api.route("/", weightsRoutes(opts.gateway));
  api.route("/", restRoutes(rest));
  api.route("/", samplingRoutes(opts.gateway));
  api.route("/", futureRoutes(opts.gateway));
  api.route("/", biosExtraRoutes(opts.gateway));
  api.route("/", runMetricsRoutes(opts.gateway));
  api.route("/", dashboardApiRoutes(opts.gateway));
  app.route("/api/v1", api);
  app.route(
    "/v1",
    openaiRoutes({
      ...opts,
      noAuthTenant: NO_AUTH_TENANT,
      maxBodyBytes: maxSize,
    }),
  );
  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    const allow = allowedMethods(app.routes, path);
    if (allow.length > 0) {
      return c.json(
        {
          error: `${c.req.method} is not a method of ${path}: it takes ${
            allow.join(", ")
          }`,
        },
        405,
        { Allow: allow.join(", ") },
      );
    }
    return c.json({ error: `no route ${c.req.method} ${path}` }, 404);
  });
  app.onError((e, c) => {
    if (e instanceof HttpError) {
      return c.json(
        e.body(),
        e.status as ContentfulStatusCode,
        e.headers,
      );
    }
    const bios = biosErrorJson(e);
    const extra = bios !== undefined ? { "bios_error": bios } : {};
    if (e instanceof InvalidArgumentError) {
      return c.json(
        { error: toWireText(e.message), field: e.field, ...extra },
        400,
      );
    }
    if (e instanceof NotFoundError) {
      return c.json({ error: toWireText(e.message), ...extra }, 404);
    }
    if (isUserError(e)) {
      return c.json({ error: toWireText(e.message), ...extra }, 400);
    }
    console.error(`bios gateway: ${c.req.method} ${c.req.path}:`, e);
    return c.json(
      { error: `internal error: ${(e as Error).message}`, ...extra },
      500,
    );
  });
  return app;
}
