/**
 * Chat templates against transformers: for tokenizers in the two common
 * styles (Llama 3's headers, Qwen's ChatML; `scripts/make_chat_fixtures.py`),
 * Bios renders and tokenizes conversations to exactly the ids transformers'
 * `apply_chat_template` gave, and `chatDatum` trains on the assistant's
 * turns only.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { tokenizerFromFiles } from "../model/tokenizer.ts";

const ROOT = new URL("./fixtures/chat/", import.meta.url).pathname;

async function load(style: string) {
  const files: Record<string, string> = {};
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    files[f] = await Deno.readTextFile(`${ROOT}${style}/${f}`);
  }
  const cases = JSON.parse(
    await Deno.readTextFile(`${ROOT}${style}/expected.json`),
  ) as {
    messages: bios.chat.ChatMessage[];
    addGenerationPrompt: boolean;
    ids: number[];
  }[];
  return { tok: tokenizerFromFiles(files), cases };
}

for (const style of ["llama3", "chatml"]) {
  Deno.test(`chat (${style}): rendered ids equal transformers' apply_chat_template`, async () => {
    const { tok, cases } = await load(style);
    assert.ok(
      tok.chatTemplate,
      "the template comes from tokenizer_config.json",
    );
    for (const c of cases) {
      assert.deepEqual(
        bios.chat.chatIds(tok, c.messages, {
          addGenerationPrompt: c.addGenerationPrompt,
        }),
        c.ids,
        `${c.messages.length} messages, generation prompt ${c.addGenerationPrompt}`,
      );
    }
  });

  Deno.test(`chat (${style}): chatDatum trains on the assistant's turns only`, async () => {
    const { tok, cases } = await load(style);
    const c = cases.find((x) =>
      !x.addGenerationPrompt && x.messages.some((m) => m.role === "assistant")
    )!;
    const d = bios.chat.chatDatum(tok, c.messages);
    const input = d.modelInput.chunks[0].tokens as number[];
    const targets = d.lossFnInputs.targetTokens as number[];
    const weights = d.lossFnInputs.weights as number[];
    // The whole conversation, shifted by one for next-token prediction.
    assert.deepEqual([...input, targets.at(-1)], c.ids);
    assert.equal(weights.length, targets.length);
    // What is weighted decodes to the assistant turns and their end tokens.
    const taught = targets.filter((_, i) => weights[i] === 1);
    const text = tok.decode(taught, { skipSpecial: false });
    for (const m of c.messages) {
      assert.equal(
        text.includes(m.content),
        m.role === "assistant",
        `${m.role}: ${m.content}`,
      );
    }
    assert.ok(text.includes(tok.eosToken!), "the end-of-turn token is taught");
    assert.ok(weights.every((w) => w === 0 || w === 1));
    assert.throws(
      () => bios.chat.chatDatum(tok, [{ role: "user", content: "hi" }]),
      /messages must hold at least one assistant turn/,
    );
  });
}
