import assert from "node:assert/strict";
import { parseOrThrow } from "../parse.ts";
import {
  checkTokenRange,
  ModelInput,
  ModelInputSchema,
  NonEmptyModelInputSchema,
} from "./model_input.ts";

Deno.test("ModelInput helpers build, extend and read token sequences", () => {
  const a = ModelInput.fromInts([1, 2]);
  assert.deepEqual(a, { chunks: [{ type: "encoded_text", tokens: [1, 2] }] });
  const b = ModelInput.appendInt(a, 3);
  assert.deepEqual(ModelInput.toInts(b), [1, 2, 3]);
  assert.deepEqual(ModelInput.toInts(a), [1, 2], "appendInt must not mutate");
  const c = ModelInput.append(b, { type: "encoded_text", tokens: [4] });
  assert.equal(ModelInput.length(c), 4);
  assert.equal(c.chunks.length, 2);
  assert.deepEqual(ModelInput.toInt32Array(c), new Int32Array([1, 2, 3, 4]));
  assert.deepEqual(ModelInput.empty(), { chunks: [] });
  assert.equal(ModelInput.length(ModelInput.empty()), 0);
  assert.deepEqual(
    ModelInput.toInts(ModelInput.appendInt(ModelInput.empty(), 7)),
    [7],
  );
  assert.deepEqual(
    ModelInput.toInts(ModelInput.fromInts(new Int32Array([5, 6]))),
    [5, 6],
  );
});

Deno.test("helper-made and plain model inputs both validate", () => {
  const helper = ModelInput.fromInts([10, 11]);
  const plain = { chunks: [{ type: "encoded_text", tokens: [10, 11] }] };
  assert.deepEqual(parseOrThrow(ModelInputSchema, helper, "prompt"), helper);
  assert.deepEqual(parseOrThrow(ModelInputSchema, plain, "prompt"), helper);
  const typed = {
    chunks: [{ type: "encoded_text", tokens: new Int32Array([3]) }],
  };
  assert.equal(
    ModelInput.length(parseOrThrow(ModelInputSchema, typed, "p")),
    1,
  );
});

Deno.test("bad token ids are refused with their position", () => {
  const bad = (tokens: unknown[]) => ({
    chunks: [{ type: "encoded_text", tokens }],
  });
  assert.throws(() => parseOrThrow(ModelInputSchema, bad([1, -1]), "prompt"), {
    name: "InvalidArgumentError",
    field: "prompt.chunks[0].tokens[1]",
    message:
      /prompt\.chunks\[0\]\.tokens\[1\] must be a token id: an integer in \[0, 2147483647\]: got -1/,
  });
  assert.throws(() => parseOrThrow(ModelInputSchema, bad([1.5]), "prompt"), {
    field: "prompt.chunks[0].tokens[0]",
    message: /got 1\.5/,
  });
  assert.throws(() => parseOrThrow(ModelInputSchema, bad(["7"]), "prompt"), {
    field: "prompt.chunks[0].tokens[0]",
    message: /got "7"/,
  });
  assert.throws(
    () => parseOrThrow(ModelInputSchema, bad([2 ** 31]), "prompt"),
    {
      field: "prompt.chunks[0].tokens[0]",
    },
  );
  assert.throws(() => ModelInput.fromInts([3, -2]), { field: "tokens[1]" });
  assert.throws(() => ModelInput.appendInt(ModelInput.empty(), 0.5), {
    field: "token[0]",
  });
});

Deno.test("image chunks and empty inputs are refused where tokens are needed", () => {
  assert.throws(
    () =>
      parseOrThrow(ModelInputSchema, {
        chunks: [{ type: "image", data: "xx", format: "png" }],
      }, "prompt"),
    {
      field: "prompt.chunks[0].type",
      message: /only text chunks are supported.*got "image"/,
    },
  );
  assert.throws(
    () => parseOrThrow(NonEmptyModelInputSchema, ModelInput.empty(), "prompt"),
    { field: "prompt", message: /prompt must hold at least 1 token/ },
  );
  assert.throws(
    () =>
      parseOrThrow(NonEmptyModelInputSchema, ModelInput.fromInts([]), "prompt"),
    { field: "prompt" },
  );
});

Deno.test("checkTokenRange refuses ids at or above the vocabulary size", () => {
  checkTokenRange([0, 9], 10, "prompt");
  assert.throws(() => checkTokenRange([0, 10], 10, "prompt"), {
    name: "InvalidArgumentError",
    field: "prompt[1]",
    message: /prompt\[1\] must be a token id in \[0, 9\].*got 10/,
  });
  assert.throws(() => checkTokenRange(new Int32Array([-1]), 10, "t"), {
    field: "t[0]",
  });
});
