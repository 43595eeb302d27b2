import assert from "node:assert/strict";
import { Tokenizer as HfCoreTokenizer } from "@huggingface/tokenizers";
import {
  BYTE_BOS_ID,
  BYTE_EOS_ID,
  BYTE_PAD_ID,
  ByteTokenizer,
  byteTokenizerJson,
  isByteTokenizerJson,
  TokenIdError,
} from "./byte_tokenizer.ts";

const tok = new ByteTokenizer();

Deno.test("ByteTokenizer.encode() gives the UTF-8 bytes, with BOS on request", () => {
  assert.deepEqual(tok.encode("A é"), [65, 32, 0xc3, 0xa9]);
  assert.deepEqual(tok.encode("🌍"), [0xf0, 0x9f, 0x8c, 0x8d]);
  assert.deepEqual(tok.encode("x", { addBos: true }), [BYTE_BOS_ID, 120]);
  assert.deepEqual(tok.encode(""), []);
  // Literal special text stays bytes.
  assert.deepEqual(tok.encode("<|eos|>"), [
    ...new TextEncoder().encode("<|eos|>"),
  ]);
  assert.equal(tok.vocabSize, 259);
  assert.equal(tok.bosTokenId, 256);
  assert.equal(tok.eosTokenId, 257);
});

Deno.test("ByteTokenizer.decode() is lossless UTF-8 and handles specials", () => {
  const text = "Grüße, 世界! 🌍\n\ttabs";
  assert.equal(tok.decode(tok.encode(text)), text);
  assert.equal(
    tok.decode([BYTE_BOS_ID, 104, 105, BYTE_EOS_ID, BYTE_PAD_ID]),
    "hi",
  );
  assert.equal(
    tok.decode([BYTE_BOS_ID, 104, BYTE_EOS_ID], { skipSpecial: false }),
    "<|bos|>h<|eos|>",
  );
  // Invalid sequences become U+FFFD; a special between bytes splits the byte run.
  assert.equal(tok.decode([0xff, 104]), "\uFFFDh");
  assert.equal(tok.decode([0xc3, BYTE_EOS_ID, 0xa9]), "\uFFFD\uFFFD");
  assert.equal(tok.decode([0xc3, 0xa9]), "é");
});

Deno.test("ByteTokenizer.decode() rejects ids outside the vocabulary", () => {
  assert.throws(() => tok.decode([1, 259]), (e: Error) => {
    assert.ok(e instanceof TokenIdError);
    assert.match(
      e.message,
      /token id at position 1 must be an integer in \[0, 258\]: got 259/,
    );
    return true;
  });
  assert.throws(() => tok.decode([-1]), TokenIdError);
  assert.throws(() => tok.decode([1.5]), TokenIdError);
});

Deno.test("byte tokenizer.json reads the same in @huggingface/tokenizers", () => {
  const hf = new HfCoreTokenizer(byteTokenizerJson(), {
    clean_up_tokenization_spaces: false,
  });
  for (
    const text of [
      "hello world",
      " leading and trailing ",
      "Grüße 世界 🌍\r\n\u0000\u007f",
      "a\u00a0b\u00adc",
    ]
  ) {
    const ids = hf.encode(text, { add_special_tokens: false }).ids;
    assert.deepEqual(ids, tok.encode(text), JSON.stringify(text));
    assert.equal(hf.decode(ids, { skip_special_tokens: true }), text);
  }
  const all = Array.from({ length: 256 }, (_, b) => b);
  assert.equal(hf.decode(all), tok.decode(all));
  assert.equal(
    hf.decode([104, 257, 105], { skip_special_tokens: true }),
    tok.decode([104, 257, 105]),
  );
  assert.equal(hf.token_to_id("<|pad|>"), BYTE_PAD_ID);
});

Deno.test("isByteTokenizerJson() recognises only the byte tokenizer", () => {
  assert.equal(isByteTokenizerJson(byteTokenizerJson()), true);
  assert.equal(
    isByteTokenizerJson(JSON.parse(tok.toFiles()["tokenizer.json"])),
    true,
  );
  const merged = byteTokenizerJson();
  (merged.model as { merges: string[] }).merges = ["a b"];
  assert.equal(isByteTokenizerJson(merged), false);
  const shuffled = byteTokenizerJson();
  const vocab = (shuffled.model as { vocab: Record<string, number> }).vocab;
  [vocab["a"], vocab["b"]] = [vocab["b"], vocab["a"]];
  assert.equal(isByteTokenizerJson(shuffled), false);
  assert.equal(
    isByteTokenizerJson({ ...byteTokenizerJson(), added_tokens: [] }),
    false,
  );
  assert.equal(isByteTokenizerJson(null), false);
});
