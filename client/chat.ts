/**
 * Conversations as training data: a model's chat template (Jinja, from its
 * `tokenizer_config.json`, rendered with `@huggingface/jinja`) turns messages
 * into the text the model was tuned on, and {@link chatDatum} makes a Datum
 * that trains on the assistant's tokens only — each assistant turn's content
 * and its end-of-turn token — as tinker-cookbook's renderers do.
 *
 * @example
 * ```ts ignore
 * const tok = await tc.getTokenizer();
 * const datum = bios.chat.chatDatum(tok, [
 *   { role: "user", content: "What is a bond?" },
 *   { role: "assistant", content: "A loan to a company." },
 * ]);
 * await tc.forwardBackward([datum], "cross_entropy");
 * ```
 *
 * @module
 */

import { Template } from "@huggingface/jinja";
import { InvalidArgumentError } from "../runtime/errors.ts";
import type { Tokenizer } from "../protocol/types/tokenizer.ts";
import type { DatumInput } from "../protocol/types/datum.ts";

/** One message of a conversation. */
export interface ChatMessage {
  /** Who speaks: "system", "user" or "assistant" (templates may know others). */
  role: string;
  /** What is said. */
  content: string;
}

/** Options of {@link renderChat}. */
export interface RenderOptions {
  /** Append the opening of an assistant turn (for sampling a reply). @default {false} */
  addGenerationPrompt?: boolean;
  /** The template; default the tokenizer's `chatTemplate`. */
  template?: string;
}

function templateOf(tok: Tokenizer, template?: string): string {
  const t = template ?? tok.chatTemplate;
  if (t === undefined) {
    throw new InvalidArgumentError(
      "template",
      `tokenizer ${tok.name} has no chat template (tokenizer_config.json's chat_template): pass one`,
    );
  }
  return t;
}

/**
 * The text `messages` render to under the chat template, as transformers'
 * `apply_chat_template(..., tokenize=False)` gives it.
 */
export function renderChat(
  tok: Tokenizer,
  messages: readonly ChatMessage[],
  opts: RenderOptions = {},
): string {
  return new Template(templateOf(tok, opts.template)).render({
    messages,
    "add_generation_prompt": opts.addGenerationPrompt ?? false,
    "bos_token": tok.bosToken ?? "",
    "eos_token": tok.eosToken ?? "",
  });
}

/**
 * The token ids of `messages` under the chat template, as transformers'
 * `apply_chat_template(..., tokenize=True)` gives them.
 */
export function chatIds(
  tok: Tokenizer,
  messages: readonly ChatMessage[],
  opts: RenderOptions = {},
): number[] {
  return tok.encode(renderChat(tok, messages, opts));
}

/**
 * A next-token Datum of a conversation that trains on the assistant's turns
 * only: weight 1 on each assistant turn's tokens (its content and the
 * template's end-of-turn tokens), 0 on everything else.
 *
 * Each turn's tokens are what rendering it adds to the conversation before
 * it; a template whose rendering of a prefix is not a prefix of the whole is
 * refused.
 *
 * @throws {InvalidArgumentError} naming `messages` when there is no
 *   assistant turn, or the template does not render incrementally
 */
export function chatDatum(
  tok: Tokenizer,
  messages: readonly ChatMessage[],
  opts: { template?: string } = {},
): DatumInput {
  if (!messages.some((m) => m.role === "assistant")) {
    throw new InvalidArgumentError(
      "messages",
      "messages must hold at least one assistant turn to train on",
    );
  }
  const ids: number[] = [];
  const weights: number[] = [];
  for (let i = 0; i < messages.length; i++) {
    const assistant = messages[i].role === "assistant";
    // Before an assistant turn, its opening (the generation prompt) is
    // context, not something to learn.
    const before = chatIds(tok, messages.slice(0, i), {
      template: opts.template,
      addGenerationPrompt: assistant,
    });
    const after = chatIds(tok, messages.slice(0, i + 1), opts);
    extend(ids, weights, before, 0, i);
    extend(ids, weights, after, assistant ? 1 : 0, i);
  }
  return {
    modelInput: {
      chunks: [{ type: "encoded_text", tokens: ids.slice(0, -1) }],
    },
    lossFnInputs: { targetTokens: ids.slice(1), weights: weights.slice(1) },
  };
}

/** Append the tokens of `next` beyond `ids` (which must be its prefix). */
function extend(
  ids: number[],
  weights: number[],
  next: number[],
  weight: number,
  turn: number,
): void {
  for (let j = 0; j < ids.length; j++) {
    if (next[j] !== ids[j]) {
      throw new InvalidArgumentError(
        "messages",
        `messages[${turn}]: the chat template's rendering of the conversation up to it does not extend the rendering before it (token ${j} differs), so its tokens cannot be told apart`,
      );
    }
  }
  for (let j = ids.length; j < next.length; j++) {
    ids.push(next[j]);
    weights.push(weight);
  }
}
