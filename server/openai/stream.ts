/**
 * A streamed OpenAI response, sent as the sampler draws: each choice's
 * tokens become chunks as soon as they are certainly content
 * (server/openai/choice_text.ts), then its `finish_reason` once its
 * sequence is whole, then `usage` when asked for.
 *
 * The response starts with its first chunk: a request the sampler refuses
 * (a prompt too long for the model, say) is still a plain HTTP error, and
 * only a failure after the first token arrives inside the stream, as an
 * `error` event (what OpenAI's clients raise).
 *
 * @module
 */
import { ChoiceText } from "./choice_text.ts";
import type { StreamRender } from "./render.ts";
import {
  generate,
  type Generation,
  type GenerationRequest,
  stopStringsOf,
} from "./sample.ts";

type Chunk = Record<string, unknown>;

/** Chunks in order, read once, as they come; ended or failed once. */
class ChunkQueue implements AsyncIterable<Chunk> {
  readonly #items: Chunk[] = [];
  #ended = false;
  #error?: { e: unknown };
  #wake?: () => void;
  readonly #started = Promise.withResolvers<void>();

  /** Resolves with the first chunk or the end; rejects on a failure before either. */
  get started(): Promise<void> {
    return this.#started.promise;
  }

  push(c: Chunk): void {
    this.#items.push(c);
    this.#started.resolve();
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#started.resolve();
    this.#wake?.();
  }

  fail(e: unknown): void {
    this.#error = { e };
    this.#started.reject(e);
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Chunk> {
    for (;;) {
      while (this.#items.length > 0) yield this.#items.shift()!;
      if (this.#error) throw this.#error.e;
      if (this.#ended) return;
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = undefined;
    }
  }
}

/**
 * Start a generation whose chunks are rendered by `render` as it goes;
 * resolves with them once the first is ready.
 *
 * @throws {OpenAIError} what the generation failed with before its first chunk
 */
export async function streamGeneration(
  req: GenerationRequest,
  render: StreamRender,
  includeUsage: boolean,
): Promise<AsyncIterable<Chunk>> {
  const q = new ChunkQueue();
  const stops = stopStringsOf(req.params);
  const texts = new Map<number, ChoiceText>();
  const textOf = (index: number): ChoiceText => {
    let ct = texts.get(index);
    if (!ct) {
      ct = new ChoiceText(req.model.tokenizer, stops, req.cutAt);
      texts.set(index, ct);
      const open = render.open(index);
      if (open) q.push(open);
    }
    return ct;
  };
  generate(req, {
    onTokens(first, p) {
      p.sequences.forEach((s, b) => {
        if (s.tokens.length === 0) return;
        const index = first + b;
        for (const t of textOf(index).add(s.tokens, s.logprobs)) {
          q.push(render.token(index, t));
        }
      });
    },
    onChoices(first, choices) {
      choices.forEach((c, b) => {
        const index = first + b;
        for (const t of textOf(index).rest(c)) q.push(render.token(index, t));
        q.push(render.finish(index, c.finishReason));
      });
    },
  }).then((g: Generation) => {
    if (includeUsage) q.push(render.usage(g));
    q.end();
  }, (e) => q.fail(e));
  await q.started;
  return q;
}
