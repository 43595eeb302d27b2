/**
 * Zod schemas of the OpenAI-compatible request bodies (`/v1/completions`,
 * `/v1/chat/completions`), as OpenAI names their fields. They check shapes
 * only; the sampling values' ranges are Bios's own rules
 * (protocol/types/sampling_params.ts), checked when the request becomes a
 * `SamplingParams`, so the two cannot drift.
 *
 * A field that is not listed is refused ("unrecognized request argument",
 * as OpenAI does), and a field that would change the result but that Bios
 * does not do (tools, response formats, penalties on frequency, logit
 * biases, best-of, echo, …) is refused with the reason, unless it holds its
 * neutral value: nothing is ignored silently except `user`, `metadata`,
 * `store` and `service_tier`, which do not change what is generated.
 *
 * @module
 */
import { z } from "zod";
import { OpenAIError } from "./errors.ts";

const num = (what = "a number") => z.number({ error: `must be ${what}` });
const int = () => z.number({ error: "must be an integer" });

/** Stop sequences as OpenAI takes them: a string or up to 4 strings (Bios allows more). */
const StopSchema = z.union([z.string(), z.array(z.string())], {
  error: "must be a string or an array of strings",
});

/** Fields both routes take. */
const COMMON = {
  model: z.string({ error: "must be a model name or a checkpoint path" })
    .min(1, { error: "must be a model name or a checkpoint path" }),
  "max_tokens": int().nullish(),
  temperature: num().nullish(),
  "top_p": num().nullish(),
  n: int().nullish(),
  stop: StopSchema.nullish(),
  seed: int().nullish(),
  stream: z.boolean({ error: "must be a boolean" }).nullish(),
  "stream_options": z.object({
    "include_usage": z.boolean({ error: "must be a boolean" }).nullish(),
  }, { error: "must be an object" }).nullish(),
  "top_k": int().nullish(),
  "min_p": num().nullish(),
  "repetition_penalty": num().nullish(),
  user: z.unknown().optional(),
  metadata: z.unknown().optional(),
  store: z.unknown().optional(),
  "service_tier": z.unknown().optional(),
  "frequency_penalty": z.unknown().optional(),
  "presence_penalty": z.unknown().optional(),
  "logit_bias": z.unknown().optional(),
};

/** Schema of a `/v1/completions` body. */
export const CompletionRequestSchema = z.object({
  ...COMMON,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1),
    z.array(int()).min(1),
    z.array(z.array(int()).min(1)).min(1),
  ], {
    error:
      "must be a string, an array of strings, an array of token ids, or an array of arrays of token ids",
  }),
  logprobs: int().nullish(),
  echo: z.unknown().optional(),
  "best_of": z.unknown().optional(),
  suffix: z.unknown().optional(),
}, { error: "the body must be a JSON object" });

/** A `/v1/completions` body. */
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

/** One content part of a chat message: only text. */
const TextPartSchema = z.object({
  type: z.literal("text", {
    error: 'must be "text" (Bios samples text-only models)',
  }),
  text: z.string({ error: "must be a string" }),
}, { error: "must be a content part object" });

/** Schema of one chat message. */
const MessageSchema = z.object({
  role: z.enum(["system", "developer", "user", "assistant"], {
    error:
      'must be "system", "developer", "user" or "assistant" (tool messages are not supported)',
  }),
  content: z.union([z.string(), z.array(TextPartSchema)], {
    error: "must be a string or an array of text parts",
  }),
  name: z.string({ error: "must be a string" }).optional(),
}, { error: "must be a message object" });

/** Schema of a `/v1/chat/completions` body. */
export const ChatRequestSchema = z.object({
  ...COMMON,
  messages: z.array(MessageSchema, { error: "must be an array of messages" })
    .min(1, { error: "must hold at least one message" }),
  "max_completion_tokens": int().nullish(),
  logprobs: z.boolean({ error: "must be a boolean" }).nullish(),
  "top_logprobs": z.unknown().optional(),
  tools: z.unknown().optional(),
  "tool_choice": z.unknown().optional(),
  "parallel_tool_calls": z.unknown().optional(),
  functions: z.unknown().optional(),
  "function_call": z.unknown().optional(),
  "response_format": z.unknown().optional(),
  modalities: z.unknown().optional(),
  audio: z.unknown().optional(),
  prediction: z.unknown().optional(),
  "reasoning_effort": z.unknown().optional(),
  "web_search_options": z.unknown().optional(),
}, { error: "the body must be a JSON object" });

/** A `/v1/chat/completions` body. */
export type ChatRequest = z.infer<typeof ChatRequestSchema>;

/** Whether a field holds its neutral value (absent, null, 0, false, empty). */
function neutral(v: unknown): boolean {
  if (v === undefined || v === null || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v).length === 0;
  return false;
}

/** Fields Bios does not do, each with when it is still acceptable and why not. */
const REFUSED: Readonly<
  Record<string, { ok?: (v: unknown) => boolean; why: string }>
> = {
  tools: { why: "tool calling is not supported by Bios" },
  "tool_choice": {
    ok: (v) => neutral(v) || v === "none",
    why: "tool calling is not supported by Bios",
  },
  "parallel_tool_calls": { why: "tool calling is not supported by Bios" },
  functions: { why: "function calling is not supported by Bios" },
  "function_call": {
    ok: (v) => neutral(v) || v === "none",
    why: "function calling is not supported by Bios",
  },
  "response_format": {
    ok: (v) =>
      neutral(v) || (typeof v === "object" &&
        (v as { type?: unknown }).type === "text" &&
        Object.keys(v as object).length === 1),
    why:
      'structured output is not supported by Bios (only {"type": "text"}): constrain the reply in the prompt',
  },
  modalities: {
    ok: (v) =>
      neutral(v) || (Array.isArray(v) && v.length === 1 && v[0] === "text"),
    why: 'Bios generates text only (modalities ["text"])',
  },
  audio: { why: "Bios generates text only" },
  prediction: { why: "predicted outputs are not supported by Bios" },
  "reasoning_effort": {
    why:
      "reasoning_effort is not supported by Bios (its models take no such setting)",
  },
  "web_search_options": { why: "web search is not supported by Bios" },
  "frequency_penalty": {
    why:
      "frequency_penalty is not supported by Bios: use repetition_penalty (e.g. 1.1)",
  },
  "presence_penalty": {
    why:
      "presence_penalty is not supported by Bios: use repetition_penalty (e.g. 1.1)",
  },
  "logit_bias": { why: "logit_bias is not supported by Bios" },
  "top_logprobs": {
    why:
      "top_logprobs is not supported by Bios: logprobs: true gives each sampled token's logprob, without alternatives",
  },
  echo: { why: "echo is not supported by Bios" },
  "best_of": {
    ok: (v) => neutral(v) || v === 1,
    why: "best_of is not supported by Bios (use n and rank the choices)",
  },
  suffix: {
    ok: (v) => v === undefined || v === null || v === "",
    why: "suffix (insertion) is not supported by Bios",
  },
};

/**
 * `body` parsed with `schema`: unknown fields and unsupported settings
 * refused first (400 naming the field), then shapes.
 *
 * @throws {OpenAIError} 400 naming the field
 */
export function parseRequest<T>(
  schema: z.ZodObject & z.ZodType<T>,
  body: unknown,
): T {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new OpenAIError(400, "the body must be a JSON object");
  }
  const known = new Set(Object.keys(schema.shape));
  for (const [k, v] of Object.entries(body)) {
    if (!known.has(k)) {
      throw new OpenAIError(
        400,
        `Unrecognized request argument supplied: ${k}`,
        k,
        "unknown_parameter",
      );
    }
    const r = REFUSED[k];
    if (r && !(r.ok ?? neutral)(v)) {
      throw new OpenAIError(400, `${k}: ${r.why}`, k, "unsupported_parameter");
    }
  }
  const r = schema.safeParse(body);
  if (r.success) return r.data as T;
  const iss = r.error.issues[0];
  const param =
    iss.path.map((p, i) =>
      typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`
    ).join("") || null;
  throw new OpenAIError(
    400,
    param === null ? iss.message : `${param} ${iss.message}`,
    param,
  );
}
