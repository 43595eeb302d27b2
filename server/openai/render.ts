/**
 * OpenAI's response bodies: the whole `text_completion` /
 * `chat.completion` of a {@linkcode Generation}, or the kinds of chunk of a
 * stream (`text_completion` / `chat.completion.chunk`): one per token of a
 * choice as it comes (server/openai/stream.ts), then each choice's
 * `finish_reason`, then `usage` when asked. The chunks of a choice
 * concatenate to exactly its text.
 *
 * @module
 */
import type { Tokenizer } from "../../protocol/types/tokenizer.ts";
import type { TextToken } from "./choice_text.ts";
import { type Choice, type Generation, tokenOffsets } from "./sample.ts";

/** A response's identity: id, creation time (s), model as asked. */
export interface Head {
  /** `cmpl-…` or `chatcmpl-…`. */
  id: string;
  /** Unix seconds. */
  created: number;
  /** The request's `model`. */
  model: string;
}

/** `usage` of a generation. */
export function usageJson(
  g: Omit<Generation, "choices">,
): Record<string, number> {
  return {
    "prompt_tokens": g.promptTokens,
    "completion_tokens": g.completionTokens,
    "total_tokens": g.promptTokens + g.completionTokens,
  };
}

/** Each token's text as the tokenizer has it (special tokens included). */
function tokenTexts(tok: Tokenizer, tokens: number[]): string[] {
  return tokens.map((t) => tok.decode([t], { skipSpecial: false }));
}

/** A completion choice's `logprobs` (OpenAI's legacy shape), from `from` on. */
export function completionLogprobs(
  tok: Tokenizer,
  c: Choice,
  offsets: number[],
  from = 0,
  to = c.tokens.length,
): Record<string, unknown> {
  return {
    tokens: tokenTexts(tok, c.tokens.slice(from, to)),
    "token_logprobs": c.logprobs.slice(from, to),
    "top_logprobs": null,
    "text_offset": offsets.slice(from, to),
  };
}

/** A chat choice's `logprobs`: `{content: [{token, logprob, bytes, top_logprobs}]}`. */
export function chatLogprobs(
  tok: Tokenizer,
  c: Choice,
  from = 0,
  to = c.tokens.length,
): Record<string, unknown> {
  const enc = new TextEncoder();
  const texts = tokenTexts(tok, c.tokens.slice(from, to));
  return {
    content: texts.map((t, i) => ({
      token: t,
      logprob: c.logprobs[from + i],
      bytes: Array.from(enc.encode(t)),
      "top_logprobs": [],
    })),
  };
}

/** The body of a whole `/v1/completions` response. */
export function completionJson(
  head: Head,
  g: Generation,
  tok: Tokenizer,
  logprobs: boolean,
): Record<string, unknown> {
  return {
    id: head.id,
    object: "text_completion",
    created: head.created,
    model: head.model,
    choices: g.choices.map((c, index) => ({
      index,
      text: c.text,
      logprobs: logprobs
        ? completionLogprobs(tok, c, tokenOffsets(tok, c.tokens))
        : null,
      "finish_reason": c.finishReason,
    })),
    usage: usageJson(g),
  };
}

/** The body of a whole `/v1/chat/completions` response. */
export function chatJson(
  head: Head,
  g: Generation,
  tok: Tokenizer,
  logprobs: boolean,
): Record<string, unknown> {
  return {
    id: head.id,
    object: "chat.completion",
    created: head.created,
    model: head.model,
    choices: g.choices.map((c, index) => ({
      index,
      message: { role: "assistant", content: c.text, refusal: null },
      logprobs: logprobs ? chatLogprobs(tok, c) : null,
      "finish_reason": c.finishReason,
    })),
    usage: usageJson(g),
  };
}

/**
 * A choice's text split at its tokens: piece i is what token i adds (empty
 * while a character is incomplete); the pieces join to `c.text`.
 */
export function pieces(tok: Tokenizer, c: Choice): string[] {
  const offsets = tokenOffsets(tok, c.tokens);
  const out: string[] = [];
  for (let i = 0; i < c.tokens.length; i++) {
    const end = i + 1 < offsets.length ? offsets[i + 1] : c.text.length;
    out.push(
      c.text.slice(
        Math.min(offsets[i], c.text.length),
        Math.min(end, c.text.length),
      ),
    );
  }
  const emitted = out.join("").length;
  if (emitted < c.text.length) out.push(c.text.slice(emitted));
  return out;
}

/**
 * The chunks of a streamed response, one kind of each: what opens a
 * choice, a token's piece of text, a choice's end, and `usage`.
 */
export interface StreamRender {
  /** The chunk that opens choice `index` (chat: the assistant's role), if any. */
  open(index: number): Record<string, unknown> | null;
  /** The chunk of one token's piece of choice `index`'s text. */
  token(index: number, t: TextToken): Record<string, unknown>;
  /** The chunk that ends choice `index`. */
  finish(
    index: number,
    reason: Choice["finishReason"],
  ): Record<string, unknown>;
  /** The last chunk, with `usage` (when the request asked for it). */
  usage(g: Omit<Generation, "choices">): Record<string, unknown>;
}

/** The chunks of a streamed `/v1/completions` response (`text_completion`). */
export function completionStream(
  head: Head,
  tok: Tokenizer,
  logprobs: boolean,
): StreamRender {
  const base = {
    id: head.id,
    object: "text_completion",
    created: head.created,
    model: head.model,
  };
  return {
    open: () => null,
    token: (index, t) => ({
      ...base,
      choices: [{
        index,
        text: t.piece,
        logprobs: logprobs && t.token !== undefined
          ? {
            tokens: tokenTexts(tok, [t.token]),
            "token_logprobs": [t.logprob],
            "top_logprobs": null,
            "text_offset": [t.offset],
          }
          : null,
        "finish_reason": null,
      }],
    }),
    finish: (index, reason) => ({
      ...base,
      choices: [{ index, text: "", logprobs: null, "finish_reason": reason }],
    }),
    usage: (g) => ({ ...base, choices: [], usage: usageJson(g) }),
  };
}

/** The chunks of a streamed `/v1/chat/completions` response (`chat.completion.chunk`). */
export function chatStream(
  head: Head,
  tok: Tokenizer,
  logprobs: boolean,
): StreamRender {
  const base = {
    id: head.id,
    object: "chat.completion.chunk",
    created: head.created,
    model: head.model,
  };
  const enc = new TextEncoder();
  return {
    open: (index) => ({
      ...base,
      choices: [{
        index,
        delta: { role: "assistant", content: "" },
        logprobs: null,
        "finish_reason": null,
      }],
    }),
    token: (index, t) => {
      const text = t.token === undefined ? "" : tokenTexts(tok, [t.token])[0];
      return {
        ...base,
        choices: [{
          index,
          delta: { content: t.piece },
          logprobs: logprobs && t.token !== undefined
            ? {
              content: [{
                token: text,
                logprob: t.logprob,
                bytes: Array.from(enc.encode(text)),
                "top_logprobs": [],
              }],
            }
            : null,
          "finish_reason": null,
        }],
      };
    },
    finish: (index, reason) => ({
      ...base,
      choices: [{
        index,
        delta: {},
        logprobs: null,
        "finish_reason": reason,
      }],
    }),
    usage: (g) => ({ ...base, choices: [], usage: usageJson(g) }),
  };
}
