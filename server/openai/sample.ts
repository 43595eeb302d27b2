/**
 * One OpenAI request's generation: its settings become Bios's
 * `SamplingParams` (checked by Bios's schema, a refusal naming OpenAI's
 * field), each prompt is sampled `n` times by the model's sampler, and each
 * sequence becomes a choice: the text up to (not including) its stop — a
 * stop string, the end-of-turn or EOS token — with `finish_reason` "stop",
 * or all of it with "length".
 *
 * @module
 */
import { parseOrThrow } from "../../protocol/parse.ts";
import { MAX_NUM_SAMPLES } from "../../protocol/messages.ts";
import {
  type SamplingParamsInput,
  SamplingParamsSchema,
} from "../../protocol/types/sampling_params.ts";
import type { SampledSequence } from "../../protocol/types/responses.ts";
import type { SampleProgress } from "../../protocol/sample_progress.ts";
import type { Tokenizer } from "../../protocol/types/tokenizer.ts";
import { OpenAIError, toOpenAIError } from "./errors.ts";
import type { ResolvedModel } from "./model.ts";

/** OpenAI's sampling settings (and Bios's extras), as the routes parsed them. */
export interface OpenAISettings {
  /** `max_tokens` (or `max_completion_tokens`). */
  maxTokens?: number | null;
  /** `temperature`. */
  temperature?: number | null;
  /** `top_p`. */
  topP?: number | null;
  /** `top_k` (Bios). */
  topK?: number | null;
  /** `min_p` (Bios). */
  minP?: number | null;
  /** `repetition_penalty` (Bios). */
  repetitionPenalty?: number | null;
  /** `stop`. */
  stop?: string | string[] | null;
  /** `seed`. */
  seed?: number | null;
  /** `n`. */
  n?: number | null;
}

/** One choice: a generated sequence up to its stop. */
export interface Choice {
  /** The text. */
  text: string;
  /** The tokens the text is made of (the stop's excluded). */
  tokens: number[];
  /** Each token's log-probability. */
  logprobs: number[];
  /** `"stop"` (a stop or end of turn) or `"length"` (max_tokens). */
  finishReason: "stop" | "length";
  /** Tokens generated, the stop's included (for `usage`). */
  generated: number;
}

/** The result of a request: its choices (prompt by prompt, n each) and token counts. */
export interface Generation {
  /** The choices, `index` = position here. */
  choices: Choice[];
  /** Prompt tokens over all prompts. */
  promptTokens: number;
  /** Generated tokens over all choices. */
  completionTokens: number;
}

/** How a request stops, besides max_tokens. */
export interface Stops {
  /** The caller's stop strings. */
  strings: string[];
  /** A token id that ends a reply (a chat template's end of turn). */
  id?: number;
  /** Text that ends a reply (an end of turn of several tokens). */
  text?: string;
}

/**
 * The `SamplingParams` of `s` with `stops`, checked by Bios's schema; and
 * the token id to cut at after generation, when the stops mix strings and
 * an id (which one request cannot: the sampler then stops at the strings,
 * and the reply is cut at the id, giving the same tokens as stopping there).
 *
 * @throws {OpenAIError} 400 naming OpenAI's field
 */
export function samplingParams(
  s: OpenAISettings,
  stops: Stops,
  defaultMaxTokens: number | undefined,
): { params: SamplingParamsInput; cutAt?: number } {
  const strings = [...stops.strings];
  if (stops.text !== undefined) strings.push(stops.text);
  let stop: string[] | number[] | undefined;
  let cutAt: number | undefined;
  if (strings.length > 0) {
    stop = strings;
    cutAt = stops.id;
  } else if (stops.id !== undefined) stop = [stops.id];
  const p: Record<string, unknown> = {
    maxTokens: s.maxTokens ??
      (stop === undefined ? defaultMaxTokens : undefined),
    temperature: s.temperature ?? undefined,
    topP: s.topP ?? undefined,
    topK: s.topK ?? undefined,
    minP: s.minP ?? undefined,
    repetitionPenalty: s.repetitionPenalty ?? undefined,
    stop,
    seed: s.seed ?? undefined,
  };
  for (const k of Object.keys(p)) if (p[k] === undefined) delete p[k];
  try {
    return {
      params: parseOrThrow(SamplingParamsSchema, p, "") as SamplingParamsInput,
      cutAt,
    };
  } catch (e) {
    throw toOpenAIError(e);
  }
}

/**
 * Text offsets of each token in the text of `tokens`: where the text of
 * token i starts (decoding prefix by prefix; a prefix that ends inside a
 * character counts up to the last whole one).
 */
export function tokenOffsets(tok: Tokenizer, tokens: number[]): number[] {
  const out: number[] = [];
  let prev = 0;
  for (let i = 0; i < tokens.length; i++) {
    out.push(prev);
    const t = tok.decode(tokens.slice(0, i + 1)).replace(/\uFFFD+$/, "");
    prev = Math.max(prev, t.length);
  }
  return out;
}

/** A sequence as a choice: cut at `cutAt`, its stop removed. */
export function toChoice(
  tok: Tokenizer,
  seq: SampledSequence,
  stopStrings: readonly string[],
  cutAt: number | undefined,
): Choice {
  let tokens = seq.tokens, logprobs = seq.logprobs;
  let finish: "stop" | "length" = seq.stopReason;
  if (cutAt !== undefined) {
    const i = tokens.indexOf(cutAt);
    if (i >= 0) {
      tokens = tokens.slice(0, i + 1);
      logprobs = logprobs.slice(0, i + 1);
      finish = "stop";
    }
  }
  const generated = tokens.length;
  let text = tok.decode(tokens);
  const at = finish === "stop" ? firstStop(text, stopStrings) : -1;
  if (at >= 0) {
    // Keep the tokens whose text starts before the stop string.
    text = text.slice(0, at);
    const offsets = tokenOffsets(tok, tokens);
    let k = 0;
    while (k < tokens.length && offsets[k] < at) k++;
    tokens = tokens.slice(0, k);
    logprobs = logprobs.slice(0, k);
  } else if (finish === "stop" && tokens.length > 0) {
    // A stop token (end of turn, EOS, a stop id) ended it: not content.
    tokens = tokens.slice(0, -1);
    logprobs = logprobs.slice(0, -1);
    text = tok.decode(tokens);
  }
  return { text, tokens, logprobs, finishReason: finish, generated };
}

function firstStop(text: string, stops: readonly string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** What a streamed generation tells as it goes (server/openai/stream.ts). */
export interface GenerateHooks {
  /** Choices `first`, `first + 1`, … gained these tokens (one entry each). */
  onTokens(first: number, progress: SampleProgress): void;
  /** Choices `first`, `first + 1`, … are whole. */
  onChoices(first: number, choices: Choice[]): void;
}

/** The stop strings of checked `params`. */
export function stopStringsOf(params: SamplingParamsInput): string[] {
  return Array.isArray(params.stop) || typeof params.stop === "string"
    ? [params.stop].flat().filter((s): s is string => typeof s === "string")
    : [];
}

/** What one OpenAI request generates. */
export interface GenerationRequest {
  /** The model it names. */
  model: ResolvedModel;
  /** Its prompts, as token ids. */
  prompts: number[][];
  /** Choices per prompt. */
  n: number;
  /** Bios's sampling parameters ({@linkcode samplingParams}). */
  params: SamplingParamsInput;
  /** The end-of-turn id a reply is cut at, if any. */
  cutAt?: number;
  /** The request's field a refused prompt is named by (`prompt`, `messages`). */
  promptField: string;
}

/**
 * Sample each of the request's prompts `n` times, one prompt after the
 * other; with `hooks`, streaming the tokens as they are drawn.
 *
 * @throws {OpenAIError} 400 naming OpenAI's field (`promptField` for the prompt)
 */
export async function generate(
  req: GenerationRequest,
  hooks?: GenerateHooks,
): Promise<Generation> {
  const { model, prompts, n, params, cutAt, promptField } = req;
  const stopStrings = stopStringsOf(params);
  const choices: Choice[] = [];
  let promptTokens = 0;
  for (const ids of prompts) {
    promptTokens += ids.length;
    const first = choices.length;
    let out;
    try {
      out = await model.sampler.sample({
        prompt: { chunks: [{ type: "encoded_text", tokens: ids }] },
        samplingParams: params,
        numSamples: n,
        ...(hooks ? { onTokens: (p) => hooks.onTokens(first, p) } : {}),
      });
    } catch (e) {
      throw toOpenAIError(e, promptField);
    }
    for (const seq of out.sequences) {
      choices.push(toChoice(model.tokenizer, seq, stopStrings, cutAt));
    }
    hooks?.onChoices(first, choices.slice(first));
  }
  return {
    choices,
    promptTokens,
    completionTokens: choices.reduce((a, c) => a + c.generated, 0),
  };
}

/** `n` checked as Bios's `numSamples` rule words it. */
export function numChoices(n: number | null | undefined): number {
  const v = n ?? 1;
  if (!Number.isSafeInteger(v) || v < 1 || v > MAX_NUM_SAMPLES) {
    throw new OpenAIError(
      400,
      `n must be an integer in [1, ${MAX_NUM_SAMPLES}]: got ${v}`,
      "n",
    );
  }
  return v;
}
