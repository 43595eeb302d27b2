/**
 * Training routes of the Tinker wire: `create_model`, `get_info`, and the
 * operations that run in a run's `seq_id` order (`forward`,
 * `forward_backward`, `optim_step`, and the weights routes in weights.ts).
 * Each operation answers a future at once.
 *
 * `forward_backward` is the route a second content type (the 0.25 SDK's
 * protobuf) will switch on: it decodes its body to the same wire object and
 * calls the same {@linkcode Gateway.trainingOp}.
 *
 * @module
 */
import { Hono } from "hono";
import type { Gateway, TrainingOpKind } from "../gateway.ts";
import { type GatewayEnv, parseHead, readBody } from "../http.ts";
import {
  CreateModelSchema,
  ModelIdSchema,
  OpHeadSchema,
} from "../tinker/schemas.ts";

/** A training operation's route: its head checked now, its body in its future. */
export function opRoute(gateway: Gateway, kind: TrainingOpKind) {
  return async (c: import("hono").Context<GatewayEnv>) => {
    const body = await readBody(c);
    const head = parseHead(OpHeadSchema, body);
    const id = gateway.trainingOp(c.get("tenant"), kind, head, body);
    return c.json({ "request_id": id, "model_id": head.model_id });
  };
}

/** The training routes over `gateway`. */
export function trainingRoutes(gateway: Gateway): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  r.post("/create_model", async (c) => {
    const b = parseHead(CreateModelSchema, await readBody(c));
    const id = gateway.createModel(
      c.get("tenant"),
      b.session_id,
      b.model_seq_id,
      b.base_model,
      b.lora_config,
    );
    return c.json({ "request_id": id });
  });
  r.post("/get_info", async (c) => {
    const b = parseHead(ModelIdSchema, await readBody(c));
    return c.json(await gateway.getInfo(c.get("tenant"), b.model_id));
  });
  r.post("/forward", opRoute(gateway, "forward"));
  r.post("/forward_backward", opRoute(gateway, "forward_backward"));
  r.post("/optim_step", opRoute(gateway, "optim_step"));
  return r;
}
