/**
 * Weights routes of the Tinker wire: saves and loads (training operations,
 * in `seq_id` order, answered by futures) and `weights_info`.
 *
 * @module
 */
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
  return r;
}
