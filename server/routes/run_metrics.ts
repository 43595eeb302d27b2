/**
 * `GET /api/v1/runs/{model_id}/metrics.jsonl`: a run's metrics.jsonl
 * (client/metrics_log.ts), one line per optimizer step, for the tenant that
 * owns the run (another tenant's is a 404). A run with no step yet has an
 * empty file.
 *
 * @module
 */
import { Hono } from "hono";
import type { Gateway } from "../gateway.ts";
import { notFound } from "../errors.ts";
import type { GatewayEnv } from "../http.ts";
import { describeRoute } from "../openapi/describe.ts";

/** The content type of a metrics.jsonl. */
export const JSONL_CONTENT_TYPE = "application/jsonl; charset=utf-8";

/** The run metrics route over `gateway`. */
export function runMetricsRoutes(gateway: Gateway): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  r.get("/runs/:id/metrics.jsonl", async (c) => {
    const id = c.req.param("id");
    const path = await gateway.metricsLogPath(c.get("tenant"), id);
    if (path === undefined) throw notFound("metrics log of model", id);
    await gateway.observer.flushed();
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return c.body(text, 200, { "Content-Type": JSONL_CONTENT_TYPE });
  });
  describeRoute(r, "get", "/runs/:id/metrics.jsonl", {
    summary: "A training run's metrics.jsonl",
    description:
      "One JSON object a line per optimizer step: step, loss:sum, loss:mean, learning_rate, num_tokens, num_sequences, time/forward_backward, time/optim_step, time/total (see README, Serve it).",
    response: "The run's metrics, JSON Lines",
    responseType: JSONL_CONTENT_TYPE,
    tags: ["training"],
  });
  return r;
}
