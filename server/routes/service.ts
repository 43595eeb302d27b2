/**
 * Service routes of the Tinker wire: client config, sessions and their
 * heartbeats, telemetry, capabilities, health.
 *
 * @module
 */
import { describeRoute } from "../openapi/describe.ts";
import { Hono } from "hono";
import type { Gateway } from "../gateway.ts";
import { type GatewayEnv, parseHead, readBody } from "../http.ts";
import {
  CreateSessionSchema,
  SessionHeartbeatSchema,
} from "../tinker/schemas.ts";

/**
 * The flags `client/config` answers. `use_pyqwest_transport` must be false
 * (the SDK's default, true, needs a transport library); SDK 0.24 sends
 * forward_backward as JSON (`proto_write_fwdbwd` off), 0.25 always as
 * protobuf, uncompressed (`proto_compress_fwdbwd` off); chunks of one batch
 * sent in order.
 */
export const CLIENT_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  "pjwt_auth_enabled": false,
  "use_pyqwest_transport": false,
  "proto_write_fwdbwd": false,
  "proto_compress_fwdbwd": false,
  "fwd_via_fwdbwd": false,
  "parallel_fwdbwd_chunks": false,
  "create_model_via_load_weights": false,
});

/**
 * What `client/dynamic_config` answers (SDK 0.25 posts it after each
 * `client/config` and again every `refresh_interval_sec`). Nothing here
 * changes at run time, so the SDK's default interval stands; protobuf
 * bodies stay uncompressed.
 */
export const CLIENT_DYNAMIC_CONFIG: Readonly<Record<string, unknown>> = Object
  .freeze({
    "refresh_interval_sec": 300,
    "proto_compress_fwdbwd": false,
  });

/** The service routes over `gateway`. */
export function serviceRoutes(gateway: Gateway): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  r.post("/client/config", (c) => c.json(CLIENT_CONFIG));
  r.post("/client/dynamic_config", (c) => c.json(CLIENT_DYNAMIC_CONFIG));
  r.get(
    "/get_server_capabilities",
    async (c) => c.json(await gateway.capabilities()),
  );
  r.post("/create_session", async (c) => {
    parseHead(CreateSessionSchema, await readBody(c));
    return c.json({
      type: "create_session",
      "session_id": gateway.createSession(c.get("tenant")),
    });
  });
  r.post("/session_heartbeat", async (c) => {
    const b = parseHead(SessionHeartbeatSchema, await readBody(c));
    gateway.heartbeat(c.get("tenant"), b.session_id);
    return c.json({ type: "session_heartbeat" });
  });
  // The SDK's telemetry is acknowledged as its wire requires; Bios keeps none of it.
  r.post("/telemetry", (c) => c.json({ status: "accepted" }));
  describeRoute(r, "post", "/client/config", {
    summary: "The SDK's client flags (transport, protobuf, chunking)",
    response: "The flags",
    tags: ["service"],
  });
  describeRoute(r, "post", "/client/dynamic_config", {
    summary: "The SDK 0.25 flags refreshed at run time",
    response: "The flags and their refresh interval",
    tags: ["service"],
  });
  describeRoute(r, "get", "/get_server_capabilities", {
    summary: "The models this service trains and samples",
    response: "{supported_models: [{model_name}]}",
    tags: ["service"],
  });
  describeRoute(r, "post", "/create_session", {
    summary: "Start a session (its runs and samplers live while it beats)",
    request: CreateSessionSchema,
    response: "{session_id}",
    tags: ["service"],
  });
  describeRoute(r, "post", "/session_heartbeat", {
    summary: "Keep a session alive",
    request: SessionHeartbeatSchema,
    response: "{type: session_heartbeat}",
    tags: ["service"],
  });
  describeRoute(r, "post", "/telemetry", {
    summary: "The SDK's telemetry: acknowledged, not kept",
    response: "{status: accepted}",
    tags: ["service"],
  });
  return r;
}
