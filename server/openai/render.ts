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

/** A completion choice's `logprobs` (OpenAI's legacy shape). */
function completionLogprobs(
  tok: Tokenizer,
  tokens: number[],
  logprobs: number[],
  offsets: number[],
): Record<string, unknown> {
  return {
    tokens: tokenTexts(tok, tokens),
    "token_logprobs": logprobs,
    "top_logprobs": null,
    "text_offset": offsets,
  };
}

/** A chat choice's `logprobs`: `{content: [{token, logprob, bytes, top_logprobs}]}`. */
function chatLogprobs(
  tok: Tokenizer,
  tokens: number[],
  logprobs: number[],
): Record<string, unknown> {
  const enc = new TextEncoder();
  return {
    content: tokenTexts(tok, tokens).map((t, i) => ({
      token: t,
      logprob: logprobs[i],
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
        ? completionLogprobs(
          tok,
          c.tokens,
          c.logprobs,
          tokenOffsets(tok, c.tokens),
        )
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
      logprobs: logprobs ? chatLogprobs(tok, c.tokens, c.logprobs) : null,
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
          ? completionLogprobs(tok, [t.token], [t.logprob!], [t.offset])
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
    token: (index, t) => ({
      ...base,
      choices: [{
        index,
        delta: { content: t.piece },
        logprobs: logprobs && t.token !== undefined
          ? chatLogprobs(tok, [t.token], [t.logprob!])
          : null,
        "finish_reason": null,
      }],
    }),
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
