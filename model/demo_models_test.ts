import assert from "node:assert/strict";
import {
  buildDemoModel,
  DEMO_MODEL_NAMES,
  demoModelConfig,
  UnknownDemoModelError,
} from "./demo_models.ts";
import { llamaTensorShapes, parseLlamaConfig, toHfConfig } from "./config.ts";
import { checkLlamaTensors, tensorF32 } from "./model_folder.ts";

Deno.test("demoModelConfig() gives the five seed models their documented shapes", () => {
  assert.deepEqual(DEMO_MODEL_NAMES, [
    "ultrasafe/usf-finance",
    "ultrasafe/usf-healthcare",
    "ultrasafe/usf-code",
    "ultrasafe/usf-conversation",
    "ultrasafe/usf-general",
  ]);
  const shape = (name: string) => {
    const c = demoModelConfig(name);
    return [
      c.hiddenSize,
      c.numLayers,
      c.numHeads,
      c.numKvHeads,
      c.headDim,
      c.intermediateSize,
      c.tieWordEmbeddings,
    ];
  };
  assert.deepEqual(shape("ultrasafe/usf-finance"), [
    128,
    4,
    4,
    2,
    32,
    344,
    false,
  ]);
  assert.deepEqual(shape("ultrasafe/usf-healthcare"), [
    128,
    4,
    4,
    2,
    32,
    344,
    false,
  ]);
  assert.deepEqual(shape("ultrasafe/usf-code"), [128, 4, 4, 4, 32, 344, true]);
  assert.deepEqual(shape("ultrasafe/usf-conversation"), [
    96,
    3,
    3,
    1,
    32,
    256,
    false,
  ]);
  assert.deepEqual(shape("ultrasafe/usf-general"), [
    160,
    6,
    5,
    5,
    32,
    432,
    false,
  ]);
  for (const name of DEMO_MODEL_NAMES) {
    const c = demoModelConfig(name);
    assert.equal(c.vocabSize, 259);
    assert.equal(c.ropeTheta, 10000);
    assert.equal(c.rmsNormEps, 1e-5);
    assert.equal(c.maxPositionEmbeddings, 512);
    assert.equal(c.bosTokenId, 256);
    assert.deepEqual(c.eosTokenIds, [257]);
    // Valid as a HF config, too.
    assert.deepEqual(parseLlamaConfig(toHfConfig(c)), c);
  }
  assert.throws(
    () => demoModelConfig("ultrasafe/usf-nope"),
    UnknownDemoModelError,
  );
  assert.throws(() => demoModelConfig("toString"), UnknownDemoModelError);
});

Deno.test("buildDemoModel() is deterministic, HF-initialised and fast", () => {
  for (const name of DEMO_MODEL_NAMES) {
    const t0 = performance.now();
    const m = buildDemoModel(name);
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `${name} took ${ms} ms`);
    checkLlamaTensors(m.config, m.tensors);
    assert.equal(m.tensors.size, llamaTensorShapes(m.config).length);
    const f32 = (name: string) => tensorF32(m.tensors.get(name)!);
    assert.ok(f32("model.norm.weight").every((x) => x === 1));
    assert.ok(
      f32("model.layers.0.input_layernorm.weight").every((x) => x === 1),
    );
    const w = f32("model.layers.0.mlp.up_proj.weight");
    const mean = w.reduce((a, x) => a + x, 0) / w.length;
    const std = Math.sqrt(
      w.reduce((a, x) => a + (x - mean) ** 2, 0) / w.length,
    );
    assert.ok(Math.abs(mean) < 0.002, `${name} mean ${mean}`);
    assert.ok(Math.abs(std - 0.02) < 0.001, `${name} std ${std}`);
  }
  const a = buildDemoModel("ultrasafe/usf-finance").tensors;
  const b = buildDemoModel("ultrasafe/usf-finance").tensors;
  for (const [name, t] of a) assert.deepEqual(b.get(name), t);
  // Same shape, different seed.
  const h = buildDemoModel("ultrasafe/usf-healthcare").tensors;
  assert.notDeepEqual(
    h.get("model.embed_tokens.weight"),
    a.get("model.embed_tokens.weight"),
  );
});
