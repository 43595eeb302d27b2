/**
 * Where a chat reply ends: the text a model's chat template writes right
 * after an assistant turn's content (`<|im_end|>` for ChatML, `<|eot_id|>`
 * for Llama 3, `<end_of_turn>` for Gemma), found by rendering a short
 * conversation whose assistant turn is a marker and reading what follows
 * it. As a stop it is one token id when the tokenizer has it as one token
 * (a special token, which decoded text leaves out), else the text.
 *
 * @example
 * ```ts ignore
 * endOfTurn(chatmlTokenizer); // { text: "<|im_end|>", id: 1 }
 * ```
 *
 * @module
 */
import { renderChat } from "../../client/chat.ts";
import type { Tokenizer } from "../../protocol/types/tokenizer.ts";

/** A chat template's end of turn. */
export interface EndOfTurn {
  /** Its text. */
  text: string;
  /** Its token id, when it is one token. */
  id?: number;
}

const MARK = "BiosEndOfTurnMarker";

/**
 * The end of turn of `tok`'s chat template, or undefined when the template
 * writes nothing after an assistant turn (then the EOS token ends a reply).
 */
export function endOfTurn(tok: Tokenizer): EndOfTurn | undefined {
  const text = renderChat(tok, [
    { role: "user", content: "Hi" },
    { role: "assistant", content: MARK },
  ]);
  const at = text.lastIndexOf(MARK);
  const tail = at < 0 ? "" : text.slice(at + MARK.length).trim();
  if (tail === "") return undefined;
  const ids = tok.encode(tail);
  return ids.length === 1 ? { text: tail, id: ids[0] } : { text: tail };
}
