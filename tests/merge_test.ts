/**
 * `merge` writes a full Hugging Face folder that transformers loads as a
 * plain model with the adapted model's log-probabilities: Bios's (base +
 * adapter) and PEFT's (base + adapter). On a tied Qwen2 whose lm_head Bios
 * adapted (a `bios://` checkpoint, through `mergeAdapter`, sharded), the
 * head is untied; on an untied Llama 3 with PEFT's own adapter folder,
 * through `deno task merge`.
 */
import assert from "node:assert/strict";
import { mergeAdapter } from "../mod.ts";
import { startTestService } from "./_helpers.ts";
import {
  batchDatums,
  maxAbsDiff,
  samplerLogprobs,
  serveHfFixtures,
} from "./_hf_models.ts";
import { pythonForTests, runPython } from "./_python.ts";
import { readSafetensorsFile } from "../model/safetensors.ts";

const py = await pythonForTests("merge tests");

async function hfLogprobs(
  model: string,
  batch: { tokens: number[][]; targets: number[][] },
  adapter?: string,
): Promise<number[][]> {
  const r = await runPython<{ logprobs: number[][] }>("peft_interop.py", {
    action: "logprobs",
    model,
    adapter,
    ...batch,
  });
  return r.logprobs;
}

Deno.test({
  name:
    "a merged tied Qwen2 (lm_head adapted, sharded) loads in transformers with Bios's and PEFT's logprobs, its head untied",
  ignore: py.ignore,
  fn: async () => {
    if (py.python === null) throw new Error(`Python: ${py.missing}`);
    const fixture = "qwen2_tied";
    const models = await serveHfFixtures([fixture]);
    const ts = await startTestService({
      catalog: { file: models.catalogFile, models: models.names },
      checkpointFolder: true,
    });
    try {
      const batch = await models.batch(fixture);
      const tc = await ts.service.createLoraTrainingClient({
        baseModel: `hf/${fixture}`,
        rank: 4,
        alpha: 8,
        trainUnembed: true,
        seed: 11,
      });
      for (let i = 0; i < 3; i++) {
        await tc.train(batchDatums(batch), { learningRate: 2e-2 });
      }
      const { path } = await tc.saveState("to-merge");
      await using sc = await ts.service.createSamplingClient({
        modelPath: path,
      });
      const biosLp = await samplerLogprobs(sc, batch);
      const out = `${await models.tempDir("merged-")}/model`;
      const r = await mergeAdapter({
        adapter: path,
        out,
        checkpointRoot: ts.checkpointDir,
        maxShardBytes: 30_000,
      });
      assert.equal(r.untiedHead, true);
      assert.ok(r.files.length > 1, `sharded: ${r.files}`);
      assert.ok(r.merged.includes("lm_head.weight"));
      const cfg = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
      assert.equal(cfg.tie_word_embeddings, false);
      const index = JSON.parse(
        await Deno.readTextFile(`${out}/model.safetensors.index.json`),
      );
      assert.ok(index.weight_map["lm_head.weight"]);
      // The embedding is the base's, bit for bit: only the head changed.
      const baseEmb = (await readSafetensorsFile(
        `${models.modelDir(fixture)}/model.safetensors`,
      )).tensors.get("model.embed_tokens.weight")!;
      const mergedEmb = (await readSafetensorsFile(
        `${out}/${index.weight_map["model.embed_tokens.weight"]}`,
      )).tensors.get("model.embed_tokens.weight")!;
      assert.deepEqual(mergedEmb.data, baseEmb.data);

      const merged = await hfLogprobs(out, batch);
      const dir = `${ts.checkpointDir}/${path.slice("bios://".length)}`;
      const peft = await hfLogprobs(models.modelDir(fixture), batch, dir);
      const base = await hfLogprobs(models.modelDir(fixture), batch);
      const vsBios = maxAbsDiff(merged, biosLp);
      const vsPeft = maxAbsDiff(merged, peft);
      console.log(
        `${fixture} merged: max |Δ logprob| vs Bios ${
          vsBios.toExponential(2)
        }, vs PEFT ${vsPeft.toExponential(2)} (adapter moved them ${
          maxAbsDiff(base, peft).toFixed(3)
        })`,
      );
      assert.ok(maxAbsDiff(base, peft) > 0.05);
      assert.ok(vsBios < 1e-4, `vs Bios ${vsBios}`);
      assert.ok(vsPeft < 1e-4, `vs PEFT ${vsPeft}`);
      await assert.rejects(
        () =>
          mergeAdapter({
            adapter: path,
            out,
            checkpointRoot: ts.checkpointDir,
          }),
        { name: "MergeError", message: /exists/ },
      );
    } finally {
      await ts.close();
      await models.remove();
    }
  },
});

Deno.test({
  name:
    "deno task merge of PEFT's adapter on an untied Llama 3 loads in transformers with PEFT's and Bios's logprobs",
  ignore: py.ignore,
  fn: async () => {
    if (py.python === null) throw new Error(`Python: ${py.missing}`);
    const fixture = "llama3_scaling";
    const models = await serveHfFixtures([fixture]);
    const ts = await startTestService({
      catalog: { file: models.catalogFile, models: models.names },
      checkpointFolder: true,
    });
    try {
      const batch = await models.batch(fixture);
      const out = `${await models.tempDir("merged-")}/model`;
      const cli = await new Deno.Command(Deno.execPath(), {
        args: [
          "task",
          "--quiet",
          "merge",
          "--adapter",
          models.peftDir(fixture),
          "--base",
          `hf/${fixture}`,
          "--out",
          out,
        ],
        cwd: new URL("..", import.meta.url).pathname,
        env: { BIOS_MODELS: models.catalogFile, NO_COLOR: "1" },
      }).output();
      const stdout = new TextDecoder().decode(cli.stdout);
      assert.ok(
        cli.success,
        `merge failed: ${new TextDecoder().decode(cli.stderr)}`,
      );
      const r = JSON.parse(stdout.trim().split("\n").pop()!);
      assert.deepEqual(r.files, ["model.safetensors"]);
      assert.equal(r.untiedHead, false);
      assert.equal(r.merged.length, 2 * 7, "7 projections on 2 layers");
      await using sc = await ts.service.createSamplingClient({
        modelPath: models.peftDir(fixture),
        baseModel: `hf/${fixture}`,
      });
      const biosLp = await samplerLogprobs(sc, batch);
      const merged = await hfLogprobs(out, batch);
      const peft = await hfLogprobs(
        models.modelDir(fixture),
        batch,
        models.peftDir(fixture),
      );
      const vsBios = maxAbsDiff(merged, biosLp);
      const vsPeft = maxAbsDiff(merged, peft);
      console.log(
        `${fixture} merged: max |Δ logprob| vs Bios ${
          vsBios.toExponential(2)
        }, vs PEFT ${vsPeft.toExponential(2)}`,
      );
      assert.ok(vsBios < 1e-4, `vs Bios ${vsBios}`);
      assert.ok(vsPeft < 1e-4, `vs PEFT ${vsPeft}`);
      // Its generation config came along; the tokenizer too.
      await Deno.stat(`${out}/generation_config.json`);
      await Deno.stat(`${out}/tokenizer.json`);
    } finally {
      await ts.close();
      await models.remove();
    }
  },
});
