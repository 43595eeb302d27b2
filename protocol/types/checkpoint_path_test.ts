import assert from "node:assert/strict";
import { parseOrThrow } from "../parse.ts";
import {
  checkpointPath,
  CheckpointPathSchema,
  parseCheckpointPath,
  TrainingCheckpointPathSchema,
  validateCheckpointName,
} from "./checkpoint_path.ts";

Deno.test("checkpoint paths round-trip through parse and build", () => {
  const run = "14bdf3a1-0b95-55c7-8659-5edb1bc870af:train:17";
  for (const kind of ["weights", "sampler_weights"] as const) {
    const path = checkpointPath({ runId: run, kind, name: "epoch_0" });
    assert.equal(path, `bios://${run}/${kind}/epoch_0`);
    assert.deepEqual(parseCheckpointPath(path), {
      runId: run,
      kind,
      name: "epoch_0",
    });
  }
});

Deno.test("bad checkpoint names are refused clearly", () => {
  for (
    const name of [
      "a/b",
      "..",
      ".",
      ".tmp-latest-1",
      ".old-x",
      ".hidden",
      "\u0000x",
      "x".repeat(129),
      "",
      "%2e%2e%2f",
      "caf\u00e9",
      "a b",
    ]
  ) {
    assert.throws(() => validateCheckpointName(name), {
      name: "InvalidArgumentError",
      field: "name",
      message:
        /^name must be 1–128 characters of A–Z, a–z, 0–9, "\.", "_" or "-", not starting with "\.": got /,
    }, JSON.stringify(name));
  }
  assert.throws(() => validateCheckpointName("\u0000x"), {
    message: /got "\\u0000x"$/,
  });
  assert.throws(() => validateCheckpointName("x".repeat(129)), {
    message: /\(129 chars\)$/,
  });
  assert.equal(validateCheckpointName("x".repeat(128)), "x".repeat(128));
  assert.equal(validateCheckpointName("000042.final-v2"), "000042.final-v2");
  assert.equal(validateCheckpointName("a.."), "a..", "a dot inside is fine");
  assert.throws(() => validateCheckpointName(3, "saveState.name"), {
    field: "saveState.name",
  });
});

Deno.test("bad checkpoint paths are refused", () => {
  for (
    const p of [
      "tinker://r/weights/x",
      "bios://r/weights",
      "bios://r/weights/x/y",
      "bios://r/other/x",
      "bios://r/weights/..",
      "bios:///weights/x",
      "bios://r.x/weights/x",
      "bios://r/weights/a%2fb",
    ]
  ) {
    assert.throws(() => parseCheckpointPath(p), {
      name: "InvalidArgumentError",
      field: "path",
    }, p);
    assert.throws(() => parseOrThrow(CheckpointPathSchema, p, "path"), {
      field: "path",
    }, p);
  }
  assert.throws(
    () => checkpointPath({ runId: "r", kind: "weights", name: "a/b" }),
    { field: "name" },
  );
  assert.throws(
    () => checkpointPath({ runId: "a/b", kind: "weights", name: "n" }),
    { field: "runId" },
  );
});

Deno.test("only weights checkpoints load into training", () => {
  assert.equal(
    parseOrThrow(TrainingCheckpointPathSchema, "bios://r/weights/n", "path"),
    "bios://r/weights/n",
  );
  assert.throws(
    () =>
      parseOrThrow(
        TrainingCheckpointPathSchema,
        "bios://r/sampler_weights/n",
        "path",
      ),
    {
      field: "path",
      message: /sampler_weights checkpoint cannot be loaded for training/,
    },
  );
});
