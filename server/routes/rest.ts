/**
 * The SDK RestClient's routes (its `resources/weights.py` and
 * `rest_client.py`): training runs and checkpoints of the caller's tenant
 * listed, a checkpoint deleted, its TTL set, its archive's URL; and the
 * archive download itself, which needs no key (its URL is the capability:
 * server/tinker_rest.ts). A checkpoint is `{kind}/{name}` in the path, the
 * SDK's `checkpoint_id` (`weights/x`) as it sends it.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { InvalidArgumentError } from "../../runtime/errors.ts";
import type { CheckpointPathParts } from "../../protocol/types/checkpoint_path.ts";
import { TtlSecondsSchema } from "../../protocol/types/training_runs.ts";
import type { Page } from "../../client/link.ts";
import type { TinkerRest } from "../tinker_rest.ts";
import { type GatewayEnv, readBody } from "../http.ts";
import { describeRoute } from "../openapi/describe.ts";

const CKPT = "/training_runs/:id/checkpoints/:kind/:name";

/** Schema of `PUT …/ttl`'s body. */
const TtlBodySchema = z.object({ "ttl_seconds": TtlSecondsSchema });

const TRAINING_RUN =
  "TrainingRun {training_run_id, base_model, model_owner, is_lora, corrupted, lora_rank, last_request_time, last_checkpoint, last_sampler_checkpoint} + Bios's lora, created_at, step, live";
const CHECKPOINT =
  "Checkpoint {checkpoint_id, checkpoint_type, time, tinker_path, size_bytes, public, expires_at} + Bios's step";

/** The routes that need the tenant's key, over `rest`. */
export function restRoutes(rest: TinkerRest): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  r.get("/training_runs", async (c) => {
    return c.json(
      await rest.listTrainingRuns(c.get("tenant"), page(c, 20)),
    );
  });
  r.get("/training_runs/:id", async (c) => {
    return c.json(
      await rest.getTrainingRun(c.get("tenant"), c.req.param("id")),
    );
  });
  r.get("/training_runs/:id/checkpoints", async (c) => {
    return c.json(
      await rest.listCheckpoints(c.get("tenant"), c.req.param("id")),
    );
  });
  r.get("/checkpoints", async (c) => {
    return c.json(
      await rest.listUserCheckpoints(c.get("tenant"), page(c, 100)),
    );
  });
  r.delete(CKPT, async (c) => {
    await rest.deleteCheckpoint(c.get("tenant"), parts(c));
    return c.body(null, 204);
  });
  r.put(`${CKPT}/ttl`, async (c) => {
    const body = await readBody(c);
    await rest.setCheckpointTtl(c.get("tenant"), parts(c), body.ttl_seconds);
    return c.body(null, 204);
  });
  r.get(`${CKPT}/archive`, async (c) => {
    const base = `${new URL(c.req.url).origin}/api/v1`;
    return c.json(await rest.archiveUrl(c.get("tenant"), parts(c), base));
  });
  describeRoute(r, "get", "/training_runs", {
    summary: "The tenant's training runs, newest first (limit, offset)",
    response:
      `{training_runs: [${TRAINING_RUN}], cursor: {offset, limit, total_count}}`,
    tags: ["rest"],
  });
  describeRoute(r, "get", "/training_runs/:id", {
    summary: "One of the tenant's training runs",
    response: TRAINING_RUN,
    tags: ["rest"],
  });
  describeRoute(r, "get", "/training_runs/:id/checkpoints", {
    summary: "A run's checkpoints, oldest first",
    response: `{checkpoints: [${CHECKPOINT}]}`,
    tags: ["rest"],
  });
  describeRoute(r, "get", "/checkpoints", {
    summary: "The tenant's checkpoints of every run, newest first",
    response:
      `{checkpoints: [${CHECKPOINT}], cursor: {offset, limit, total_count}}`,
    tags: ["rest"],
  });
  describeRoute(r, "delete", CKPT, {
    summary: "Delete a checkpoint (whole, at once)",
    response: "204, no body",
    tags: ["rest"],
  });
  describeRoute(r, "put", `${CKPT}/ttl`, {
    summary:
      "Make a checkpoint expire ttl_seconds from now (an integer ≥ 1), or never (null)",
    request: TtlBodySchema,
    response: "204, no body",
    tags: ["rest"],
  });
  describeRoute(r, "get", `${CKPT}/archive`, {
    summary: "Where to download a tar of the checkpoint's verified files",
    response:
      "{url, expires}: the URL works without a key until expires (15 minutes)",
    tags: ["rest"],
  });
  return r;
}

/** The archive download, which takes no key (before the key check). */
export function archiveDownloadRoutes(rest: TinkerRest): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  r.get("/checkpoint_archives/:token", async (c) => {
    const { name, tar } = await rest.archive(c.req.param("token"));
    return c.body(tar as Uint8Array<ArrayBuffer>, 200, {
      "Content-Type": "application/x-tar",
      "Content-Disposition": `attachment; filename="${name}"`,
    });
  });
  describeRoute(r, "get", "/checkpoint_archives/:token", {
    summary: "A checkpoint's files as a tar (ustar), each verified first",
    description:
      "adapter_config.json, adapter_model.safetensors, optimizer.safetensors (weights only), manifest.json and checkpoint_complete at the root. The URL comes from GET …/archive; it works without a key until it expires.",
    response: "The tar",
    responseType: "application/x-tar",
    tags: ["rest"],
    auth: false,
  });
  return r;
}

/** The checkpoint a route's path names. */
function parts(c: Context<GatewayEnv>): CheckpointPathParts {
  const kind = c.req.param("kind");
  if (kind !== "weights" && kind !== "sampler_weights") {
    throw new InvalidArgumentError(
      "checkpoint_id",
      `checkpoint_id must be weights/<name> or sampler_weights/<name>: got ${
        JSON.stringify(`${kind}/${c.req.param("name")}`)
      }`,
    );
  }
  return { runId: c.req.param("id")!, kind, name: c.req.param("name")! };
}

/** The `limit` and `offset` of a listing's query. */
function page(c: Context<GatewayEnv>, defaultLimit: number): Page {
  const int = (field: "limit" | "offset", dflt: number, min: number) => {
    const s = c.req.query(field);
    if (s === undefined) return dflt;
    const v = Number(s);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(v) || v < min || v > 1e9) {
      throw new InvalidArgumentError(
        field,
        `${field} must be an integer ≥ ${min}: got ${JSON.stringify(s)}`,
      );
    }
    return v;
  };
  return {
    limit: Math.min(int("limit", defaultLimit, 1), 1000),
    offset: int("offset", 0, 0),
  };
}
