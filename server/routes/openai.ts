/**
 * OpenAI-compatible sampling under `/v1`: `POST /v1/completions`,
 * `POST /v1/chat/completions` (whole or streamed as server-sent events) and
 * `GET /v1/models`, so that OpenAI's clients sample a base model or a
 * checkpoint of the caller's (named as `model`). The same API keys as the
 * Tinker wire (`Authorization: Bearer <key>`, as OpenAI clients send it, or
 * `X-API-Key`), the same tenants, rate limit and body limit; every refusal
 * in OpenAI's error shape (server/openai/errors.ts).
 *
 * A stream is sent as the sampler draws (server/openai/stream.ts): a chunk
 * per token as soon as it is certainly content (not a stop string's start,
 * nor the stop token).
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { streamSSE } from "hono/streaming";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ChatMessage } from "../../client/chat.ts";
import { chatIds } from "../../client/chat.ts";
import { MAX_SAMPLING_TOKENS } from "../../protocol/types/sampling_params.ts";
import type { KeyRing } from "../auth/keys.ts";
import type { RateLimiter } from "../auth/rate_limit.ts";
import type { Gateway } from "../gateway.ts";
import type { GatewayEnv } from "../http.ts";
import { describeRoute } from "../openapi/describe.ts";
import { endOfTurn } from "../openai/end_of_turn.ts";
import { OpenAIError, toOpenAIError } from "../openai/errors.ts";
import { resolveModel, servedModels } from "../openai/model.ts";
import {
  chatJson,
  chatStream,
  completionJson,
  completionStream,
  type Head,
} from "../openai/render.ts";
import { streamGeneration } from "../openai/stream.ts";
import {
  type ChatRequest,
  ChatRequestSchema,
  type CompletionRequest,
  CompletionRequestSchema,
  parseRequest,
} from "../openai/schemas.ts";
import {
  generate,
  numChoices,
  type OpenAISettings,
  samplingParams,
  type Stops,
} from "../openai/sample.ts";

/** Options of {@linkcode openaiRoutes}: those of the gateway's app. */
export interface OpenAIRoutesOptions {
  /** The state the routes act on. */
  gateway: Gateway;
  /** The API keys; null lets every caller in as `noAuthTenant`. */
  keys: KeyRing | null;
  /** The tenant of every caller without keys. */
  noAuthTenant: string;
  /** Per-tenant rate limit; null for none. */
  rateLimit?: RateLimiter | null;
  /** Largest request body in bytes. */
  maxBodyBytes: number;
}

/** Most token ids a completion's `logprobs` may ask alternatives for (OpenAI's limit). */
const MAX_LOGPROBS = 5;

/** The key a request presents: `Authorization: Bearer`, else `X-API-Key`. */
function presentedKey(req: Request): string | null {
  const m = req.headers.get("authorization")?.match(/^Bearer\s+(\S+)$/i);
  return m ? m[1] : req.headers.get("x-api-key");
}

async function readJson(c: Context<GatewayEnv>): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new OpenAIError(
      400,
      "the body must be JSON (Content-Type: application/json)",
    );
  }
}

function settingsOf(b: CompletionRequest | ChatRequest): OpenAISettings {
  return {
    maxTokens: b.max_tokens,
    temperature: b.temperature,
    topP: b.top_p,
    topK: b.top_k,
    minP: b.min_p,
    repetitionPenalty: b.repetition_penalty,
    stop: b.stop,
    seed: b.seed,
    n: b.n,
  };
}

function stopStrings(stop: string | string[] | null | undefined): string[] {
  const s = stop === undefined || stop === null ? [] : [stop].flat();
  s.forEach((x, i) => {
    if (x === "") {
      throw new OpenAIError(
        400,
        `stop${Array.isArray(stop) ? `[${i}]` : ""} must not be empty`,
        "stop",
      );
    }
  });
  return s;
}

function head(prefix: string, model: string): Head {
  return {
    id: `${prefix}-${crypto.randomUUID().replaceAll("-", "")}`,
    created: Math.floor(Date.now() / 1000),
    model,
  };
}

/**
 * The chunks as server-sent events, then `[DONE]`; a failure midway is an
 * `error` event (OpenAI's error body), which ends the stream.
 */
function sse(
  c: Context<GatewayEnv>,
  chunks: AsyncIterable<Record<string, unknown>>,
): Response {
  return streamSSE(c, async (stream) => {
    try {
      for await (const chunk of chunks) {
        await stream.writeSSE({ data: JSON.stringify(chunk) });
      }
    } catch (e) {
      const oe = toOpenAIError(e);
      if (oe.status === 500) {
        console.error(`bios gateway: ${c.req.method} ${c.req.path}:`, e);
      }
      await stream.writeSSE({ data: JSON.stringify(oe.body()) });
      return;
    }
    await stream.writeSSE({ data: "[DONE]" });
  });
}

/** The OpenAI-compatible routes, to mount at `/v1`. */
export function openaiRoutes(opts: OpenAIRoutesOptions): Hono<GatewayEnv> {
  const { gateway } = opts;
  const r = new Hono<GatewayEnv>();
  r.onError((e, c) => {
    const oe = toOpenAIError(e);
    if (oe.status === 500) {
      console.error(`bios gateway: ${c.req.method} ${c.req.path}:`, e);
    }
    return c.json(oe.body(), oe.status as ContentfulStatusCode, oe.headers);
  });
  r.use(async (c, next) => {
    if (opts.keys === null) {
      c.set("tenant", opts.noAuthTenant);
      return await next();
    }
    const key = presentedKey(c.req.raw);
    const tenant = key === null ? null : await opts.keys.tenantOf(key);
    if (tenant === null) {
      throw new OpenAIError(
        401,
        key === null
          ? "an API key is required (header Authorization: Bearer <key>)"
          : "the API key is not known here",
        null,
        "invalid_api_key",
      );
    }
    c.set("tenant", tenant);
    await next();
  });
  if (opts.rateLimit) {
    const limiter = opts.rateLimit;
    r.use(async (c, next) => {
      const wait = limiter.take(c.get("tenant"));
      if (wait > 0) {
        throw new OpenAIError(
          429,
          `rate limit of ${limiter.opts.perSecond} requests/s (bursts of ${limiter.opts.burst}) reached: retry in ${wait} s`,
          null,
          "rate_limit_exceeded",
          "requests",
          { "Retry-After": String(wait) },
        );
      }
      await next();
    });
  }
  r.use(bodyLimit({
    maxSize: opts.maxBodyBytes,
    onError: () => {
      throw new OpenAIError(
        413,
        `the body is over this gateway's limit of ${opts.maxBodyBytes} bytes`,
      );
    },
  }));

  r.get("/models", async (c) => {
    const served = await servedModels(gateway);
    return c.json({
      object: "list",
      data: [...served.keys()].map((id) => ({
        id,
        object: "model",
        created: 0,
        "owned_by": "bios",
      })),
    });
  });

  r.post("/completions", async (c) => {
    const b = parseRequest(CompletionRequestSchema, await readJson(c));
    const n = numChoices(b.n);
    const k = b.logprobs ?? null;
    if (k !== null && (!Number.isSafeInteger(k) || k < 0 || k > MAX_LOGPROBS)) {
      throw new OpenAIError(
        400,
        `logprobs must be an integer in [0, ${MAX_LOGPROBS}]: got ${k}`,
        "logprobs",
      );
    }
    if (k !== null && k > 0) {
      throw new OpenAIError(
        400,
        "logprobs above 0 asks for the likeliest alternatives of each token, which Bios does not return: logprobs: 0 gives each sampled token's logprob",
        "logprobs",
        "unsupported_parameter",
      );
    }
    const stops: Stops = { strings: stopStrings(b.stop) };
    const model = await resolveModel(gateway, c.get("tenant"), b.model);
    const tok = model.tokenizer;
    const p = b.prompt;
    const prompts: number[][] = typeof p === "string"
      ? [tok.encode(p)]
      : typeof p[0] === "number"
      ? [p as number[]]
      : (p as (string | number[])[]).map((x) =>
        typeof x === "string" ? tok.encode(x) : x
      );
    // OpenAI's default max_tokens for completions.
    const { params, cutAt } = samplingParams(settingsOf(b), stops, 16);
    if (params.maxTokens === undefined) params.maxTokens = 16;
    const h = head("cmpl", b.model);
    const req = { model, prompts, n, params, cutAt, promptField: "prompt" };
    if (b.stream) {
      return sse(
        c,
        await streamGeneration(
          req,
          completionStream(h, tok, k !== null),
          b.stream_options?.include_usage === true,
        ),
      );
    }
    const g = await generate(req);
    return c.json(completionJson(h, g, tok, k !== null));
  });

  r.post("/chat/completions", async (c) => {
    const b = parseRequest(ChatRequestSchema, await readJson(c));
    const n = numChoices(b.n);
    const stops: Stops = { strings: stopStrings(b.stop) };
    const model = await resolveModel(gateway, c.get("tenant"), b.model);
    const tok = model.tokenizer;
    if (tok.chatTemplate === undefined) {
      throw new OpenAIError(
        400,
        `model ${b.model} has no chat template (its tokenizer_config.json has no chat_template): use /v1/completions with a prompt`,
        "model",
        "no_chat_template",
      );
    }
    const messages: ChatMessage[] = b.messages.map((m) => ({
      role: m.role === "developer" ? "system" : m.role,
      content: typeof m.content === "string"
        ? m.content
        : m.content.map((part) => part.text).join(""),
    }));
    let ids: number[];
    try {
      ids = chatIds(tok, messages, { addGenerationPrompt: true });
    } catch (e) {
      throw new OpenAIError(
        400,
        `messages: the model's chat template refused them: ${
          (e as Error).message
        }`,
        "messages",
      );
    }
    const eot = endOfTurn(tok);
    if (eot?.id !== undefined) stops.id = eot.id;
    else if (eot !== undefined) stops.text = eot.text;
    const settings = settingsOf(b);
    settings.maxTokens = b.max_completion_tokens ?? b.max_tokens;
    const room = Math.max(1, model.maxContext - ids.length);
    let sp;
    try {
      sp = samplingParams(
        settings,
        stops,
        Math.min(MAX_SAMPLING_TOKENS, room),
      );
    } catch (e) {
      throw renameMaxTokens(e, b);
    }
    const h = head("chatcmpl", b.model);
    const logprobs = b.logprobs === true;
    const req = {
      model,
      prompts: [ids],
      n,
      params: sp.params,
      cutAt: sp.cutAt,
      promptField: "messages",
    };
    if (b.stream) {
      const chunks = await streamGeneration(
        req,
        chatStream(h, tok, logprobs),
        b.stream_options?.include_usage === true,
      ).catch((e) => {
        throw renameMaxTokens(e, b);
      });
      return sse(c, chunks);
    }
    const g = await generate(req).catch((e) => {
      throw renameMaxTokens(e, b);
    });
    return c.json(chatJson(h, g, tok, logprobs));
  });

  r.all("/*", (c) => {
    throw new OpenAIError(
      404,
      `no route ${c.req.method} ${new URL(c.req.url).pathname}`,
    );
  });
  describeRoute(r, "get", "/models", {
    summary: "OpenAI: the models served (base models)",
    response: "{object: list, data: [{id, object: model, owned_by}]}",
    tags: ["openai"],
  });
  describeRoute(r, "post", "/completions", {
    summary: "OpenAI: a completion of a prompt (stream: server-sent events)",
    request: CompletionRequestSchema,
    response: "A text_completion, or its chunks as SSE when stream is true",
    tags: ["openai"],
  });
  describeRoute(r, "post", "/chat/completions", {
    summary: "OpenAI: a chat completion through the model's chat template",
    request: ChatRequestSchema,
    response: "A chat.completion, or its chunks as SSE when stream is true",
    tags: ["openai"],
  });
  return r;
}

/** A max_tokens refusal named `max_completion_tokens` when that was given. */
function renameMaxTokens(e: unknown, b: ChatRequest): unknown {
  if (
    e instanceof OpenAIError && e.param === "max_tokens" &&
    b.max_completion_tokens !== undefined && b.max_completion_tokens !== null
  ) {
    return new OpenAIError(
      e.status,
      e.message.replaceAll("max_tokens", "max_completion_tokens"),
      "max_completion_tokens",
      e.code,
      e.type,
    );
  }
  return e;
}
