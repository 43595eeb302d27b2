/**
 * Weights routes of the Tinker wire: saves and loads (training operations,
 * in `seq_id` order, answered by futures) and `weights_info`.
 *
 * @module
 */
import { describeRoute } from "../openapi/describe.ts";
import {
  FUTURE_RESPONSE,
  TRAINING_OP_BODIES,
} from "../openapi/tinker_bodies.ts";
import { Hono } from "hono";
import type { Gateway } from "../gateway.ts";
import { type GatewayEnv, parseHead, readBody } from "../http.ts";
import { WeightsInfoSchema } from "../tinker/schemas.ts";
import { opRoute } from "./training.ts";

/** The weights routes over `gateway`. */
export function weightsRoutes(gateway: Gateway): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  r.post("/save_weights", opRoute(gateway, "save_weights"));
  r.post(
    "/save_weights_for_sampler",
    opRoute(gateway, "save_weights_for_sampler"),
  );
  r.post("/load_weights", opRoute(gateway, "load_weights"));
  r.post("/weights_info", async (c) => {
    const b = parseHead(WeightsInfoSchema, await readBody(c));
    return c.json(await gateway.weightsInfo(c.get("tenant"), b.tinker_path));
  });
  describeRoute(r, "post", "/save_weights", {
    summary:
      "Save weights and optimizer state as a checkpoint (in seq_id order)",
    request: TRAINING_OP_BODIES.save_weights,
    response: `${FUTURE_RESPONSE} (its result: {path})`,
    tags: ["weights"],
  });
  describeRoute(r, "post", "/save_weights_for_sampler", {
    summary:
      "Save weights for sampling, or an ephemeral sampler without a path",
    request: TRAINING_OP_BODIES.save_weights_for_sampler,
    response:
      `${FUTURE_RESPONSE} (its result: {path} or {sampling_session_id})`,
    tags: ["weights"],
  });
  describeRoute(r, "post", "/load_weights", {
    summary: "Load a checkpoint into the run, optionally its optimizer state",
    request: TRAINING_OP_BODIES.load_weights,
    response: `${FUTURE_RESPONSE} (its result: {path})`,
    tags: ["weights"],
  });
  describeRoute(r, "post", "/weights_info", {
    summary: "What a checkpoint holds (base model, LoRA rank and targets)",
    request: WeightsInfoSchema,
    response:
      "{base_model, is_lora, lora_rank, train_unembed, train_mlp, train_attn}",
    tags: ["weights"],
  });
  return r;
}
