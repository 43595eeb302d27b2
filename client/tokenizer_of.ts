/**
 * A served base model's tokenizer, fetched from the registry by model name
 * (the files it was built from), for callers that hold no training client:
 * the gateway's OpenAI-compatible routes turn text into ids with it. The
 * tokenizer code (and `@huggingface/tokenizers`) loads only when asked for,
 * as in `TrainingClient.getTokenizer`.
 *
 * @module
 */
import type { ActorRef } from "../runtime/actor_ref.ts";
import type { Tokenizer } from "../protocol/types/tokenizer.ts";

/**
 * The tokenizer of base model `baseModel`, through the cluster's `registry`.
 *
 * @throws {NotFoundError} when the cluster does not serve `baseModel`
 */
export async function fetchTokenizer(
  registry: ActorRef,
  baseModel: string,
): Promise<Tokenizer> {
  const r = await registry.ask<
    { files: Record<string, string>; hints: Record<string, unknown> }
  >({ type: "tokenizer", baseModel });
  const { tokenizerFromFiles } = await import("../model/tokenizer.ts");
  return tokenizerFromFiles(r.files, r.hints);
}
