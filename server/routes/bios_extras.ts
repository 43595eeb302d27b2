/**
 * Bios's additions to the Tinker wire, for Bios's own TypeScript client
 * (`new ServiceClient({ baseUrl })`); the Tinker SDK never calls them:
 * `unload_sampling_session` (SamplingClient.close: stop a sampler and free
 * its memory) and `get_tokenizer` (a base model's tokenizer files, which the
 * SDK would fetch from the Hugging Face hub instead).
 *
 * @module
 */
import { Hono } from "hono";
import { describeRoute } from "../openapi/describe.ts";
import type { Gateway } from "../gateway.ts";
import { type GatewayEnv, parseHead, readBody } from "../http.ts";
import {
  GetTokenizerSchema,
  SamplingSessionIdSchema,
} from "../tinker/schemas.ts";

/** Bios's extra routes over `gateway`. */
export function biosExtraRoutes(gateway: Gateway): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  r.post("/unload_sampling_session", async (c) => {
    const b = parseHead(SamplingSessionIdSchema, await readBody(c));
    await gateway.unloadSamplingSession(c.get("tenant"), b.sampling_session_id);
    return c.json({ type: "unload_sampling_session" });
  });
  r.post("/get_tokenizer", async (c) => {
    const b = parseHead(GetTokenizerSchema, await readBody(c));
    return c.json(await gateway.tokenizerFiles(b.base_model));
  });
  describeRoute(r, "post", "/unload_sampling_session", {
    summary: "Stop a sampling session's sampler and free its memory (Bios)",
    request: SamplingSessionIdSchema,
    response: '{"type": "unload_sampling_session"}',
    tags: ["sampling"],
  });
  describeRoute(r, "post", "/get_tokenizer", {
    summary: "A base model's tokenizer files (Bios; the SDK uses the hub)",
    request: GetTokenizerSchema,
    response: "the tokenizer's files by name (tokenizer.json and its config)",
    tags: ["service"],
  });
  return r;
}
