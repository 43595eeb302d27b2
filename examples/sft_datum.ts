/**
 * Turning a prompt and completion into a training datum: the model reads
 * `bos + prompt + completion` and predicts each next token; only the
 * completion's tokens (and the final eos) carry weight.
 *
 * @module
 */
import * as bios from "../mod.ts";

/** Token ids of `bos + prompt`, the input a sampler continues. */
export function promptIds(tok: bios.Tokenizer, prompt: string): number[] {
  return [tok.bosTokenId!, ...tok.encode(prompt)];
}

/** A cross-entropy datum that teaches `completion` after `prompt`. */
export function sftDatum(
  tok: bios.Tokenizer,
  prompt: string,
  completion: string,
): bios.types.DatumInput {
  const p = promptIds(tok, prompt);
  const c = [...tok.encode(completion), tok.eosTokenId!];
  const seq = [...p, ...c];
  return {
    modelInput: bios.types.ModelInput.fromInts(seq.slice(0, -1)),
    lossFnInputs: {
      targetTokens: seq.slice(1),
      weights: seq.slice(1).map((_, i) => (i + 1 >= p.length ? 1 : 0)),
    },
  };
}
