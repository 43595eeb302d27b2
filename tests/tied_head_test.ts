/**
 * Tied embeddings: by default Bios leaves `lm_head` unadapted on a model
 * whose head is its input embedding (an adapter there cannot be merged
 * without changing the embedding too); asking for it still adapts it.
 */
import assert from "node:assert/strict";
import { startTestService } from "./_helpers.ts";

const TIED = "ultrasafe/usf-code"; // built-in, tie_word_embeddings true
const UNTIED = "ultrasafe/usf-finance";

Deno.test("lm_head is not adapted by default on a tied model, and is when asked for", async () => {
  const ts = await startTestService();
  try {
    const conn = await ts.service.connection();
    const targets = async (options: Record<string, unknown>) =>
      (await conn.registry.ask<{ lora: { targets: string[] } }>({
        type: "create_run",
        options: { rank: 4, ...options },
      }, { timeoutMs: 120_000 })).lora.targets;
    assert.ok(!(await targets({ baseModel: TIED })).includes("lm_head"));
    assert.ok(
      (await targets({ baseModel: TIED, trainUnembed: true })).includes(
        "lm_head",
      ),
    );
    assert.deepEqual(
      await targets({ baseModel: TIED, targetModules: ["q_proj", "lm_head"] }),
      ["q_proj", "lm_head"],
    );
    assert.ok((await targets({ baseModel: UNTIED })).includes("lm_head"));
  } finally {
    await ts.close();
  }
});
