import assert from "node:assert/strict";
import {
  ByteTokenizer,
  HfTokenizer,
  loadTokenizer,
  TokenIdError,
  tokenizerFromFiles,
  TokenizerLoadError,
} from "./tokenizer.ts";

/** A tiny GPT-2-style BPE tokenizer.json: byte-level, a few merges, two specials. */
function tinyBpeJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  for (const c of ["h", "e", "l", "o", "w", "r", "d", "Ġ"]) {
    vocab[c] = Object.keys(vocab).length;
  }
  for (
    const c of ["he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "Ġworld", "ld"]
  ) {
    vocab[c] = Object.keys(vocab).length;
  }
  return {
    version: "1.0",
    added_tokens: [
      {
        id: 17,
        content: "<s>",
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false,
      },
      {
        id: 18,
        content: "</s>",
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false,
      },
    ],
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: null,
    decoder: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    model: {
      type: "BPE",
      vocab,
      merges: [
        "h e",
        "l l",
        "he ll",
        "hell o",
        "Ġ w",
        "o r",
        "Ġw or",
        "l d",
        "Ġwor ld",
      ],
      unk_token: null,
      fuse_unk: false,
      byte_fallback: false,
    },
  };
}

Deno.test("tokenizerFromFiles() loads a tiny BPE tokenizer.json through @huggingface/tokenizers", () => {
  const tok = tokenizerFromFiles(
    {
      "tokenizer.json": JSON.stringify(tinyBpeJson()),
      "tokenizer_config.json": '{"bos_token":"<s>","eos_token":"</s>"}',
    },
    { name: "tiny" },
  );
  assert.ok(tok instanceof HfTokenizer);
  assert.equal(tok.name, "tiny");
  assert.equal(tok.vocabSize, 19);
  assert.equal(tok.bosTokenId, 17);
  assert.equal(tok.eosTokenId, 18);
  // "hello" and " world" each collapse to one token through the merges.
  assert.deepEqual(tok.encode("hello world"), [11, 15]);
  assert.deepEqual(tok.encode("hello world", { addBos: true }), [17, 11, 15]);
  assert.deepEqual(tok.encode("held"), [8, 16]); // "h e" outranks "l d"; no "he ld" merge
  assert.equal(tok.decode([17, 11, 15, 18]), "hello world");
  assert.equal(
    tok.decode([17, 11, 18], { skipSpecial: false }),
    "<s>hello</s>",
  );
  assert.throws(() => tok.decode([19]), TokenIdError);
  // The files round-trip.
  const again = tokenizerFromFiles(tok.toFiles());
  assert.deepEqual(again.encode("world hello"), tok.encode("world hello"));
  assert.equal(again.bosTokenId, 17);
});

Deno.test("HfTokenizer takes special ids from hints when tokenizer_config.json is absent", () => {
  const tok = tokenizerFromFiles({
    "tokenizer.json": JSON.stringify(tinyBpeJson()),
  }, { bosTokenId: 17 });
  assert.equal(tok.bosTokenId, 17);
  assert.equal(tok.eosTokenId, undefined);
  const bare = tokenizerFromFiles({
    "tokenizer.json": JSON.stringify(tinyBpeJson()),
  });
  assert.throws(() => bare.encode("hi", { addBos: true }), /has no BOS token/);
});

Deno.test("tokenizerFromFiles() recognises Bios's byte tokenizer.json", () => {
  const tok = tokenizerFromFiles(new ByteTokenizer().toFiles());
  assert.ok(tok instanceof ByteTokenizer);
  assert.deepEqual(tok.encode("ok"), [111, 107]);
});

Deno.test("tokenizerFromFiles() rejects missing or broken files clearly", () => {
  assert.throws(() => tokenizerFromFiles({}), /tokenizer.json is missing/);
  assert.throws(
    () => tokenizerFromFiles({ "tokenizer.json": "{" }),
    /tokenizer.json is not valid JSON/,
  );
  assert.throws(
    () =>
      tokenizerFromFiles({
        "tokenizer.json": JSON.stringify(tinyBpeJson()),
        "tokenizer_config.json": "[]",
      }),
    /tokenizer_config.json must be a JSON object/,
  );
  assert.throws(
    () =>
      tokenizerFromFiles({
        "tokenizer.json": JSON.stringify({ model: { type: "Nope" } }),
      }),
    (e: Error) =>
      e instanceof TokenizerLoadError && /could not be loaded/.test(e.message),
  );
});

Deno.test("loadTokenizer() reads a folder, using config.json for special ids", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => loadTokenizer(dir),
      new RegExp(`${dir}/tokenizer.json does not exist`),
    );
    await Deno.writeTextFile(
      `${dir}/tokenizer.json`,
      JSON.stringify(tinyBpeJson()),
    );
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ bos_token_id: 17, eos_token_id: [18, 1] }),
    );
    const tok = await loadTokenizer(dir);
    assert.equal(tok.bosTokenId, 17);
    assert.equal(tok.eosTokenId, 18);
    assert.equal(tok.name, dir.split("/").pop());
    for (const [name, text] of Object.entries(new ByteTokenizer().toFiles())) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    assert.ok((await loadTokenizer(dir)) instanceof ByteTokenizer);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
