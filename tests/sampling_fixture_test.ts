/**
 * Bios's generation against transformers' own `generate` on a committed tiny
 * checkpoint (`scripts/make_sampling_fixtures.py`): greedy decoding with and
 * without `repetition_penalty`, and min-p 1 (a forced draw), must pick the
 * same tokens on every backend.
 */
import assert from "node:assert/strict";
import type { Backend } from "../kernels/backend.ts";
import { parseLlamaConfig } from "../model/config.ts";
import { generate } from "../model/generate.ts";
import { readSafetensorsFile } from "../model/safetensors.ts";
import { Stage } from "../model/stage.ts";
import { splitLayers, uploadStage } from "../model/stage_weights.ts";
import { TEST_BACKENDS } from "./_backends.ts";

const ROOT = new URL("../", import.meta.url).pathname;

interface Fixture {
  model: string;
  prompt: number[];
  cases: {
    name: string;
    args: {
      do_sample: boolean;
      repetition_penalty?: number;
      min_p?: number;
      temperature?: number;
    };
    tokens: number[];
  }[];
}

const fixture: Fixture = JSON.parse(
  await Deno.readTextFile(`${ROOT}tests/fixtures/sampling/hf_generate.json`),
);

async function stageOf(be: Backend): Promise<Stage> {
  const dir = `${ROOT}${fixture.model}`;
  const cfg = parseLlamaConfig(
    JSON.parse(await Deno.readTextFile(`${dir}/config.json`)),
  );
  const tensors = new Map(
    [...(await readSafetensorsFile(`${dir}/model.safetensors`)).tensors]
      .map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }]),
  );
  const range = splitLayers(cfg.numLayers, 1)[0];
  return new Stage(be, cfg, range, uploadStage(be, cfg, tensors, range));
}

Deno.test("the fixture's cases show the penalty at work", () => {
  const byName = new Map(fixture.cases.map((c) => [c.name, c.tokens]));
  const repeats = (t: number[]) => t.length - new Set(t).size;
  assert.ok(repeats(byName.get("greedy")!) > 0, "plain greedy repeats");
  assert.notDeepEqual(byName.get("greedy_rep1.3"), byName.get("greedy"));
  // a large penalty: no token twice, none from the prompt
  const big = byName.get("greedy_rep10")!;
  assert.equal(repeats(big), 0);
  assert.ok(big.every((t) => !fixture.prompt.includes(t)));
});

const required = Deno.env.get("BIOS_REQUIRE_ALL") === "1";
for (const [name, open, pkg] of TEST_BACKENDS) {
  const be = await open();
  if (!be && !required) {
    console.log(`sampling fixtures on ${name} skipped: needs ${pkg}`);
  }
  Deno.test({
    name:
      `generate picks transformers' tokens (greedy, repetition_penalty, min_p 1) on ${name}`,
    ignore: !be && !required,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (!be) throw new Error(`${name} backend unavailable`);
      const stage = await stageOf(be);
      for (const c of fixture.cases) {
        const sampled = c.args.do_sample;
        const seqs = await generate(be, [stage], fixture.prompt, {
          numSamples: 2,
          maxTokens: c.tokens.length,
          temperature: sampled ? c.args.temperature ?? 1 : 0,
          topK: -1,
          topP: 1,
          minP: c.args.min_p ?? 0,
          repetitionPenalty: c.args.repetition_penalty ?? 1,
          seed: 11,
          stopTokens: [],
          readEvery: 4,
        });
        for (const s of seqs) assert.deepEqual(s.tokens, c.tokens, c.name);
      }
    },
  });
}
