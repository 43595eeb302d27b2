/**
 * Training routes of the Tinker wire: `create_model`, `get_info`, and the
 * operations that run in a run's `seq_id` order (`forward`,
 * `forward_backward`, `optim_step`, and the weights routes in weights.ts).
 * Each operation answers a future at once.
 *
 * `forward_backward` also takes SDK 0.25's protobuf
 * (`Content-Type: application/x-protobuf`, uncompressed): decoded to the
 * same trainer call (`forward_only` as `forward`) by
 * server/tinker/from_proto.ts, then the same {@linkcode Gateway.trainingOp}.
 *
 * @module
 */
import { describeRoute } from "../openapi/describe.ts";
import {
  FUTURE_RESPONSE,
  TRAINING_OP_BODIES,
} from "../openapi/tinker_bodies.ts";
import { Hono } from "hono";
import type { Gateway, TrainingOpKind } from "../gateway.ts";
import { HttpError } from "../errors.ts";
import { type GatewayEnv, parseHead, readBody } from "../http.ts";
import { acceptsProtobuf } from "../proto/mod.ts";
import { protoForwardBackward } from "../tinker/from_proto.ts";
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
    const id = await gateway.trainingOp(c.get("tenant"), kind, head, body);
    return c.json({ "request_id": id, "model_id": head.model_id });
  };
}

/**
 * `forward_backward` in either content type: JSON (SDK 0.24) through
 * {@linkcode opRoute}, protobuf (SDK 0.25, `forward` included) decoded here.
 */
export function forwardBackwardRoute(gateway: Gateway) {
  const json = opRoute(gateway, "forward_backward");
  return async (c: import("hono").Context<GatewayEnv>) => {
    if (!acceptsProtobuf(c.req.header("content-type"))) return await json(c);
    const encoding = c.req.header("content-encoding");
    if (
      encoding !== undefined && encoding.trim().toLowerCase() !== "identity"
    ) {
      throw new HttpError(
        400,
        `forward_backward takes an uncompressed body (client/config answers proto_compress_fwdbwd: false): got Content-Encoding ${encoding}`,
      );
    }
    const op = protoForwardBackward(new Uint8Array(await c.req.arrayBuffer()));
    const id = await gateway.trainingOp(
      c.get("tenant"),
      op.kind,
      op.head,
      {},
      op.prepared,
    );
    return c.json({ "request_id": id, "model_id": op.head.model_id });
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
  r.post("/forward_backward", forwardBackwardRoute(gateway));
  r.post("/optim_step", opRoute(gateway, "optim_step"));
  describeRoute(r, "post", "/create_model", {
    summary: "Create a LoRA training run",
    request: CreateModelSchema,
    response: `${FUTURE_RESPONSE} (its result: {model_id})`,
    tags: ["training"],
  });
  describeRoute(r, "post", "/get_info", {
    summary: "A run's model and LoRA rank",
    request: ModelIdSchema,
    response: "{model_id, model_data, is_lora, lora_rank, model_name}",
    tags: ["training"],
  });
  describeRoute(r, "post", "/forward", {
    summary: "Forward pass and loss, no gradients (in seq_id order)",
    request: TRAINING_OP_BODIES.forward,
    response: `${FUTURE_RESPONSE} (its result: a ForwardBackwardOutput)`,
    tags: ["training"],
  });
  describeRoute(r, "post", "/forward_backward", {
    summary:
      "Forward, loss and backward; gradients accumulate (in seq_id order)",
    description:
      "JSON (SDK 0.24) or application/x-protobuf (SDK 0.25, uncompressed; forward_only is a forward).",
    request: TRAINING_OP_BODIES.forward_backward,
    requestTypes: ["application/x-protobuf"],
    response: `${FUTURE_RESPONSE} (its result: a ForwardBackwardOutput)`,
    tags: ["training"],
  });
  describeRoute(r, "post", "/optim_step", {
    summary: "Adam step on the accumulated gradients (in seq_id order)",
    request: TRAINING_OP_BODIES.optim_step,
    response: `${FUTURE_RESPONSE} (its result: {metrics})`,
    tags: ["training"],
  });
  return r;
}
