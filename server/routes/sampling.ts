/**
 * Sampling routes of the Tinker wire: sampling sessions, `asample` (a
 * future), and what a sampler samples.
 *
 * @module
 */
import { describeRoute } from "../openapi/describe.ts";
import { FUTURE_RESPONSE, SAMPLE_BODY } from "../openapi/tinker_bodies.ts";
import { Hono } from "hono";
import type { Gateway } from "../gateway.ts";
import { type GatewayEnv, parseHead, readBody } from "../http.ts";
import {
  CreateSamplingSessionSchema,
  SampleHeadSchema,
} from "../tinker/schemas.ts";

/** The sampling routes over `gateway`. */
export function samplingRoutes(gateway: Gateway): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  r.post("/create_sampling_session", async (c) => {
    const b = parseHead(CreateSamplingSessionSchema, await readBody(c));
    const id = await gateway.createSamplingSession(
      c.get("tenant"),
      b.session_id,
      b.sampling_session_seq_id,
      b.base_model ?? undefined,
      b.model_path ?? undefined,
      b.model_id ?? undefined,
    );
    return c.json({
      type: "create_sampling_session",
      "sampling_session_id": id,
    });
  });
  r.post("/asample", async (c) => {
    const body = await readBody(c);
    const head = parseHead(SampleHeadSchema, body);
    return c.json({
      "request_id": await gateway.sample(c.get("tenant"), head, body),
    });
  });
  r.get(
    "/samplers/:id",
    (c) => c.json(gateway.samplerInfo(c.get("tenant"), c.req.param("id"))),
  );
  describeRoute(r, "post", "/create_sampling_session", {
    summary: "Start a sampler of a base model or a checkpoint",
    request: CreateSamplingSessionSchema,
    response: "{sampling_session_id}",
    tags: ["sampling"],
  });
  describeRoute(r, "post", "/asample", {
    summary: "Generate from a sampling session, a base model or a checkpoint",
    request: SAMPLE_BODY,
    response: `${FUTURE_RESPONSE} (its result: a SampleResponse)`,
    tags: ["sampling"],
  });
  describeRoute(r, "get", "/samplers/:id", {
    summary: "What a sampling session samples",
    response: "{sampler_id, base_model, model_path?}",
    tags: ["sampling"],
  });
  return r;
}
