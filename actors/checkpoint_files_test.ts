import assert from "node:assert/strict";
import { exists, removeStaleTemporaries } from "./checkpoint_files.ts";

Deno.test("removeStaleTemporaries removes old interrupted saves only", async () => {
  const root = await Deno.makeTempDir({ prefix: "bios-ckpt-sweep-" });
  try {
    const parent = `${root}/run-1/weights`;
    for (const d of [".tmp-a-old", ".trash-b-old", ".tmp-c-new", "kept"]) {
      await Deno.mkdir(`${parent}/${d}`, { recursive: true });
    }
    const old = new Date(Date.now() - 2 * 3_600_000);
    await Deno.utime(`${parent}/.tmp-a-old`, old, old);
    await Deno.utime(`${parent}/.trash-b-old`, old, old);
    await Deno.utime(`${parent}/kept`, old, old);
    assert.equal(await removeStaleTemporaries(root, 3_600_000), 2);
    assert.equal(await exists(`${parent}/.tmp-a-old`), false);
    assert.equal(await exists(`${parent}/.trash-b-old`), false);
    assert.equal(
      await exists(`${parent}/.tmp-c-new`),
      true,
      "a save in progress is left alone",
    );
    assert.equal(
      await exists(`${parent}/kept`),
      true,
      "a checkpoint is never touched",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
