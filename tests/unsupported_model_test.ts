/**
 * A catalog that names a model Bios cannot serve (a Gemma 2 folder: an
 * architecture Bios does not run) fails requests for that model alone,
 * with the reason; the registry does not crash, and every other model is
 * served as before.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import {
  nextTokenDatum,
  startTestService,
  textIds,
  TINY,
  TINY2,
} from "./_helpers.ts";

const OTHER = "test/gemma2-folder";

Deno.test("an unsupported model in the catalog is refused by name and reason; the others are served", async () => {
  const ts = await startTestService();
  const dir = await Deno.makeTempDir({ prefix: "bios-other-" });
  const prev = Deno.env.get("BIOS_MODELS");
  try {
    const tiny = JSON.parse(await Deno.readTextFile(ts.catalogFile))
      .models as Record<string, string>;
    const root = ts.catalogFile.slice(0, ts.catalogFile.lastIndexOf("/"));
    await Deno.mkdir(`${dir}/other`);
    await Deno.writeTextFile(
      `${dir}/other/config.json`,
      JSON.stringify({
        "model_type": "gemma2",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 259,
      }),
    );
    await Deno.writeTextFile(
      `${dir}/catalog.json`,
      JSON.stringify({
        models: {
          [TINY]: `${root}/${tiny[TINY]}`,
          [TINY2]: `${root}/${tiny[TINY2]}`,
          [OTHER]: "other",
        },
      }),
    );
    Deno.env.set("BIOS_MODELS", `${dir}/catalog.json`);
    const caps = await ts.service.getServerCapabilities();
    assert.ok(caps.supportedModels.some((m) => m.modelName === TINY));
    assert.ok(!caps.supportedModels.some((m) => m.modelName === OTHER));
    const bad = caps.unsupportedModels?.find((m) => m.modelName === OTHER);
    assert.ok(bad, JSON.stringify(caps));
    assert.match(bad.reason, /gemma2/);
    for (
      const call of [
        () => ts.service.createLoraTrainingClient({ baseModel: OTHER }),
        () => ts.service.createSamplingClient({ baseModel: OTHER }),
      ]
    ) {
      await assert.rejects(call, (e: Error & { field?: string }) => {
        assert.ok(e instanceof bios.errors.InvalidArgumentError, e.message);
        assert.equal(e.field, "baseModel");
        assert.match(e.message, /cannot be served: .*gemma2/);
        return true;
      });
    }
    // The registry is the same actor, and other models train.
    const conn = await ts.service.connection();
    assert.ok(!conn.system.wasStopped("registry"));
    const tc = await ts.service.createLoraTrainingClient({
      baseModel: TINY,
      rank: 4,
    });
    const out = await tc.forwardBackward(
      [nextTokenDatum(textIds("Q: 1?\nA: 1"))],
      "cross_entropy",
    );
    assert.ok(Number.isFinite(out.loss));
  } finally {
    if (prev === undefined) Deno.env.delete("BIOS_MODELS");
    else Deno.env.set("BIOS_MODELS", prev);
    await ts.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
