/**
 * The dashboard: its page at `/dashboard` (open: it holds no data; server/
 * dashboard/) and the JSON and event-stream routes it reads under
 * `/api/v1/dashboard`, behind the tenant's API key like every `/api/v1`
 * route, so a tenant sees only its own runs, checkpoints and samplers.
 *
 * - `GET runs`: the tenant's runs with their last step and loss.
 * - `GET runs/{id}/metrics`: the run's metrics.jsonl lines, as JSON.
 * - `GET runs/{id}/checkpoints`: its checkpoints.
 * - `GET runs/{id}/events?after=N`: server-sent events, one `metrics` event
 *   per metrics.jsonl line past the first N (`id:` is the line's number, so
 *   `Last-Event-ID` resumes too), as the gateway records them; a heartbeat
 *   comment every 15 s; it ends when the client goes or the gateway stops.
 * - `GET samplers`: the tenant's samplers.
 *
 * The key travels in the `X-API-Key` header on every call, the event
 * stream's included (the page reads it with fetch, not EventSource, which
 * cannot send headers): it never appears in a URL, where access logs and
 * proxies would keep it.
 *
 * @module
 */
import { Hono } from "hono";
import { toTinkerPath } from "../../protocol/tinker/paths.ts";
import {
  DASHBOARD_FILES,
  DASHBOARD_HEADERS,
  dashboardFile,
} from "../dashboard/assets.ts";
import { readMetricsFrom } from "../dashboard/metrics_file.ts";
import {
  DEFAULT_HEARTBEAT_MS,
  EVENT_STREAM_CONTENT_TYPE,
  SseStream,
} from "../dashboard/sse.ts";
import { HttpError, notFound } from "../errors.ts";
import type { Gateway } from "../gateway.ts";
import type { GatewayEnv } from "../http.ts";
import { describeRoute } from "../openapi/describe.ts";

/** How many event streams one tenant may hold open at once. */
export const MAX_STREAMS_PER_TENANT = 16;

/** Options of {@linkcode dashboardApiRoutes}. */
export interface DashboardApiOptions {
  /** Milliseconds between an event stream's heartbeats. @default {15000} */
  heartbeatMs?: number;
}

/** The loss a run list shows for a metrics line: `loss:mean`, else `loss:sum`. */
function lossOf(line: Readonly<Record<string, number>> | undefined) {
  return line?.["loss:mean"] ?? line?.["loss:sum"] ?? null;
}

/** Where run `id`'s metrics.jsonl is. @throws {HttpError} 404 */
async function logPath(
  gateway: Gateway,
  tenant: string,
  id: string,
): Promise<string> {
  const path = await gateway.metricsLogPath(tenant, id);
  if (path === undefined) throw notFound("metrics log of model", id);
  return path;
}

/** The line count an event stream starts after: `?after=N` or `Last-Event-ID`. */
function startAfter(query: string | undefined, header: string | undefined) {
  const raw = query ?? header;
  if (raw === undefined || raw === "") return 0;
  if (!/^\d{1,9}$/.test(raw)) {
    throw new HttpError(
      400,
      `after must be a line count (an integer ≥ 0): got ${
        JSON.stringify(raw.slice(0, 40))
      }`,
      "after",
    );
  }
  return Number(raw);
}

/** The dashboard's routes under `/api/v1` (keyed, per tenant). */
export function dashboardApiRoutes(
  gateway: Gateway,
  opts: DashboardApiOptions = {},
): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  const open = new Map<string, number>();

  r.get("/dashboard/runs", async (c) => {
    const runs = (await gateway.runsOf(c.get("tenant"))).map((run) => ({
      "model_id": run.id,
      "base_model": run.baseModel ?? null,
      "last_step": run.last?.step ?? null,
      "last_loss": lossOf(run.last),
    }));
    return c.json({ runs });
  });
  describeRoute(r, "get", "/dashboard/runs", {
    summary: "The caller's training runs, with their last step and loss",
    description:
      "last_loss is the last metrics line's loss:mean (loss:sum when the data carry no weights); null before the first step.",
    response:
      '{"runs": [{"model_id", "base_model", "last_step", "last_loss"}]}',
    tags: ["dashboard"],
  });

  r.get("/dashboard/runs/:id/metrics", async (c) => {
    const id = c.req.param("id");
    const path = await logPath(gateway, c.get("tenant"), id);
    await gateway.observer.flushed();
    const { lines } = await readMetricsFrom(path, 0);
    return c.json({ "model_id": id, lines });
  });
  describeRoute(r, "get", "/dashboard/runs/:id/metrics", {
    summary: "A run's metrics.jsonl lines, as JSON",
    response: '{"model_id", "lines": [{"step", "loss:mean", …}]}',
    tags: ["dashboard"],
  });

  r.get("/dashboard/runs/:id/checkpoints", async (c) => {
    const id = c.req.param("id");
    const list = await gateway.checkpointsOf(c.get("tenant"), id);
    return c.json({
      "model_id": id,
      checkpoints: list.map((k) => ({
        "tinker_path": toTinkerPath(k.path),
        kind: k.kind,
        name: k.name,
        "created_at": k.createdAt,
        "size_bytes": k.sizeBytes,
      })),
    });
  });
  describeRoute(r, "get", "/dashboard/runs/:id/checkpoints", {
    summary: "A run's checkpoints, oldest first",
    response:
      '{"model_id", "checkpoints": [{"tinker_path", "kind", "name", "created_at", "size_bytes"}]}',
    tags: ["dashboard"],
  });

  r.get("/dashboard/runs/:id/events", async (c) => {
    const tenant = c.get("tenant");
    const id = c.req.param("id");
    const path = await logPath(gateway, tenant, id);
    const after = startAfter(
      c.req.query("after"),
      c.req.header("last-event-id"),
    );
    const held = open.get(tenant) ?? 0;
    if (held >= MAX_STREAMS_PER_TENANT) {
      throw new HttpError(
        429,
        `at most ${MAX_STREAMS_PER_TENANT} event streams per tenant are open at once`,
        undefined,
        { "Retry-After": "5" },
      );
    }
    open.set(tenant, held + 1);
    const sse = new SseStream({
      heartbeatMs: opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    });
    // Every wake-up reads the file past what was sent: each line once, in
    // order, whether it was written before the stream opened or after.
    let offset = 0;
    let count = 0;
    let reading: Promise<void> = Promise.resolve();
    const pump = () => {
      reading = reading.then(async () => {
        if (sse.done) return;
        const read = await readMetricsFrom(path, offset);
        offset = read.offset;
        for (const line of read.lines) {
          if (++count > after) {
            sse.event("metrics", JSON.stringify(line), String(count));
          }
        }
      }).catch((e) => {
        console.error(`bios gateway: event stream of ${id}:`, e);
        sse.close();
      });
    };
    const unsubscribe = gateway.observer.feed.subscribe(
      id,
      pump,
      () => sse.close(),
    );
    sse.closed.then(() => {
      unsubscribe();
      const n = (open.get(tenant) ?? 1) - 1;
      if (n > 0) open.set(tenant, n);
      else open.delete(tenant);
    });
    pump();
    return new Response(sse.body, {
      headers: {
        "Content-Type": EVENT_STREAM_CONTENT_TYPE,
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
      },
    });
  });
  describeRoute(r, "get", "/dashboard/runs/:id/events", {
    summary: "A run's metrics lines as server-sent events, live",
    description:
      "One `metrics` event per metrics.jsonl line past ?after=N (or Last-Event-ID), its id the line's number, first those written already, then each as the gateway records it; a heartbeat comment every 15 s. Send the key as X-API-Key (read the stream with fetch). At most 16 open streams per tenant (429).",
    response: "text/event-stream",
    responseType: EVENT_STREAM_CONTENT_TYPE,
    tags: ["dashboard"],
  });

  r.get(
    "/dashboard/samplers",
    (c) => c.json({ samplers: gateway.samplersOf(c.get("tenant")) }),
  );
  describeRoute(r, "get", "/dashboard/samplers", {
    summary: "The caller's samplers: id, base model, checkpoint",
    response: '{"samplers": [{"sampler_id", "base_model", "model_path"?}]}',
    tags: ["dashboard"],
  });
  return r;
}

/** The dashboard page and its files: `/dashboard`, `/dashboard/<file>` (no key). */
export function dashboardPageRoutes(): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  for (const [name, type] of Object.entries(DASHBOARD_FILES)) {
    const path = name === "index.html" ? "/dashboard" : `/dashboard/${name}`;
    r.get(path, async (c) =>
      c.body(await dashboardFile(name), 200, {
        ...DASHBOARD_HEADERS,
        "Content-Type": type,
      }));
    describeRoute(r, "get", path, {
      summary: name === "index.html"
        ? "The dashboard: runs, loss curves, checkpoints, samplers"
        : `The dashboard's ${name}`,
      description: name === "index.html"
        ? "A page that asks for the API key and reads /api/v1/dashboard/* with it; it holds no data itself."
        : undefined,
      response: type.split(";")[0],
      responseType: type,
      tags: ["dashboard"],
      auth: false,
    });
  }
  return r;
}
