/**
 * A LoRA adapter saved by PEFT loads into Bios — for sampling
 * (`createSamplingClient({ modelPath: folder })`) and for training
 * (`createTrainingClientFromState(folder)`, `loadState(folder)`) — and gives
 * PEFT's log-probabilities: the fixtures' adapters (attention and MLP, B
 * drawn at random) and one PEFT trains here on a tied Qwen3 with `lm_head`
 * adapted. Options Bios does not implement are refused by name, and a
 * refused load changes nothing.
 */
import assert from "node:assert/strict";
import { startTestService, type TestService } from "./_helpers.ts";
import {
  batchDatums,
  type FixtureBatch,
  forwardLogprobs,
  type HfModels,
  maxAbsDiff,
  samplerLogprobs,
  serveHfFixtures,
} from "./_hf_models.ts";
import { pythonForTests, runPython } from "./_python.ts";
import { readSafetensorsFile, writeSafetensors } from "../model/safetensors.ts";

const py = await pythonForTests("PEFT import tests");
const FIXTURES = ["qwen2_tied", "llama3_scaling", "qwen3_tied"];

async function peftLogprobs(
  models: HfModels,
  fixture: string,
  adapter: string,
  batch: FixtureBatch,
): Promise<number[][]> {
  const r = await runPython<{ logprobs: number[][] }>("peft_interop.py", {
    action: "logprobs",
    model: models.modelDir(fixture),
    adapter,
    ...batch,
  });
  return r.logprobs;
}

/** Run `fn` with the fixtures served and a service that knows them. */
function withService(
  fn: (ts: TestService, models: HfModels) => Promise<void>,
): () => Promise<void> {
  return async () => {
    if (py.python === null) throw new Error(`Python: ${py.missing}`);
    const models = await serveHfFixtures(FIXTURES);
    const ts = await startTestService({
      catalog: { file: models.catalogFile, models: models.names },
    });
    try {
      await fn(ts, models);
    } finally {
      await ts.close();
      await models.remove();
    }
  };
}

Deno.test({
  name:
    "a PEFT adapter folder samples with PEFT's logprobs (file:// URL and absolute path)",
  ignore: py.ignore,
  fn: withService(async (ts, models) => {
    for (const fixture of ["qwen2_tied", "llama3_scaling"]) {
      const batch = await models.batch(fixture);
      const want = await peftLogprobs(
        models,
        fixture,
        models.peftDir(fixture),
        batch,
      );
      for (
        const modelPath of [
          `file://${models.peftDir(fixture)}`,
          models.peftDir(fixture),
        ]
      ) {
        await using sc = await ts.service.createSamplingClient({
          modelPath,
          baseModel: `hf/${fixture}`,
        });
        const diff = maxAbsDiff(await samplerLogprobs(sc, batch), want);
        console.log(
          `${fixture} sampler: max |Δ logprob| vs PEFT ${
            diff.toExponential(2)
          }`,
        );
        assert.ok(diff < 1e-4, `${fixture}: max |Δ logprob| ${diff}`);
      }
    }
  }),
});

Deno.test({
  name:
    "an adapter PEFT trained (tied Qwen3, lm_head adapted) trains on in Bios from PEFT's logprobs",
  ignore: py.ignore,
  fn: withService(async (ts, models) => {
    const fixture = "qwen3_tied";
    const batch = await models.batch(fixture);
    const dir = await models.tempDir("peft-trained-");
    const trained = await runPython<{ loss: number[] }>("peft_interop.py", {
      action: "train",
      model: models.modelDir(fixture),
      out: dir,
      r: 4,
      alpha: 16,
      "target_modules": ["q_proj", "v_proj", "down_proj", "lm_head"],
      steps: 3,
      lr: 1e-2,
      ...batch,
    });
    assert.ok(trained.loss[2] < trained.loss[0], "PEFT trained it");
    const want = await peftLogprobs(models, fixture, dir, batch);
    // No baseModel: the adapter's base_model_name_or_path is the folder
    // this node serves as hf/qwen3_tied.
    const info = await ts.service.weightsInfo(dir);
    assert.deepEqual(
      { ...info },
      {
        baseModel: `hf/${fixture}`,
        isLora: true,
        loraRank: 4,
        loraAlpha: 16,
        targetModules: ["q_proj", "v_proj", "down_proj", "lm_head"],
        trainAttn: true,
        trainMlp: true,
        trainUnembed: true,
        kind: "peft_adapter",
        step: 0,
      },
    );
    const tc = await ts.service.createTrainingClientFromState(dir);
    const got = await forwardLogprobs(tc, batch);
    const diff = maxAbsDiff(got, want);
    console.log(
      `${fixture} PEFT-trained, in training: max |Δ logprob| vs PEFT ${
        diff.toExponential(2)
      }`,
    );
    assert.ok(diff < 1e-4, `max |Δ logprob| ${diff}`);
    // It trains on: a step lowers the loss from PEFT's last.
    const first = await tc.train(batchDatums(batch), { learningRate: 1e-2 });
    const after = await tc.forward(batchDatums(batch), "cross_entropy");
    assert.ok(after.loss < first.loss, `${after.loss} < ${first.loss}`);

    // loadState into a run of the same shape gives the same weights back.
    const tc2 = await ts.service.createLoraTrainingClient({
      baseModel: `hf/${fixture}`,
      rank: 4,
      alpha: 16,
      targetModules: ["q_proj", "v_proj", "down_proj", "lm_head"],
    });
    assert.equal(
      (await tc2.loadState(`file://${dir}`)).path,
      `file://${dir}`,
    );
    assert.ok(maxAbsDiff(await forwardLogprobs(tc2, batch), want) < 1e-4);
    await assert.rejects(
      () =>
        ts.service.createTrainingClientFromState(dir, { withOptimizer: true }),
      { name: "InvalidArgumentError", field: "withOptimizer" },
    );
    await assert.rejects(() => tc2.loadStateWithOptimizer(dir).result(), {
      name: "InvalidArgumentError",
      message: /holds weights only/,
    });

    // PEFT saved lm_head's base weight beside the factors (a tied layer):
    // one that is not the model's marks an adapter of another model.
    const file = await readSafetensorsFile(`${dir}/adapter_model.safetensors`);
    const other = new Map(
      [...file.tensors].map(([k, t]) => [k, {
        shape: t.shape,
        data: k.endsWith("lm_head.base_layer.weight")
          ? (t.data as Float32Array).map((v) => v * 1.01)
          : t.data,
      }]),
    );
    assert.ok(other.has("base_model.model.lm_head.base_layer.weight"));
    await Deno.writeFile(
      `${dir}/adapter_model.safetensors`,
      writeSafetensors(other, file.metadata),
    );
    await assert.rejects(() => tc2.loadState(dir).result(), {
      name: "InvalidArgumentError",
      message: /lm_head.weight PEFT saved with the adapter is not the model's/,
    });
  }),
});

/** A copy of a fixture's PEFT adapter with `edit` applied to its config. */
async function editedAdapter(
  models: HfModels,
  fixture: string,
  edit: Record<string, unknown>,
): Promise<string> {
  const dir = await models.tempDir("peft-edited-");
  const src = models.peftDir(fixture);
  await Deno.copyFile(
    `${src}/adapter_model.safetensors`,
    `${dir}/adapter_model.safetensors`,
  );
  const cfg = JSON.parse(await Deno.readTextFile(`${src}/adapter_config.json`));
  await Deno.writeTextFile(
    `${dir}/adapter_config.json`,
    JSON.stringify({ ...cfg, ...edit }),
  );
  return dir;
}

Deno.test({
  name:
    "PEFT options Bios does not implement are refused by name, and a refused load changes nothing",
  ignore: py.ignore,
  fn: withService(async (ts, models) => {
    const fixture = "llama3_scaling";
    const baseModel = `hf/${fixture}`;
    const batch = await models.batch(fixture);
    const tc = await ts.service.createLoraTrainingClient({
      baseModel,
      rank: 4,
      alpha: 8,
      trainUnembed: false,
      seed: 3,
    });
    await tc.train(batchDatums(batch), { learningRate: 1e-2 });
    const before = await forwardLogprobs(tc, batch);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ "use_dora": true }, /use_dora must be off: .*DoRA/],
      [{ "use_rslora": true }, /use_rslora must be off: .*rsLoRA/],
      [{ bias: "all" }, /bias must be off: .*"none"/],
      [{ "modules_to_save": ["lm_head"] }, /modules_to_save must be off/],
      [{ "fan_in_fan_out": true }, /fan_in_fan_out must be off/],
      [{ "layers_to_transform": [0] }, /layers_to_transform must be off/],
      [{ "layers_pattern": "layers" }, /layers_pattern must be off/],
      [{ "rank_pattern": { "q_proj": 8 } }, /rank_pattern must be off/],
      [{ "alpha_pattern": { "q_proj": 8 } }, /alpha_pattern must be off/],
      [
        { "target_modules": ["q_proj", "embed_tokens"] },
        /target_modules\[1\] must be a module Bios can adapt: .*"embed_tokens"/,
      ],
      [{ "target_modules": ["q_proj"] }, /adapts k_proj, which .* not list/],
      [{ r: 8 }, /not that of a rank 8/],
      [{ "peft_type": "IA3" }, /peft_type must be "LORA"/],
    ];
    for (const [edit, message] of cases) {
      const dir = await editedAdapter(models, fixture, edit);
      if (edit.use_dora) {
        const e = await tc.loadState(dir).result().catch((e) => e);
        console.log(`refused: ${e.message}`);
      }
      await assert.rejects(() => tc.loadState(dir).result(), {
        name: "InvalidArgumentError",
        message,
      }, JSON.stringify(edit));
      await assert.rejects(
        () => ts.service.createSamplingClient({ modelPath: dir, baseModel }),
        { name: "InvalidArgumentError", message },
        JSON.stringify(edit),
      );
    }
    // lora_dropout is fine; an adapter of another model is not.
    const dropout = await editedAdapter(models, fixture, {
      "lora_dropout": 0.1,
    });
    await (await ts.service.createSamplingClient({
      modelPath: dropout,
      baseModel,
    })).close();
    await assert.rejects(
      () =>
        ts.service.createSamplingClient({
          modelPath: models.peftDir("qwen3_tied"),
          baseModel,
        }),
      { name: "InvalidArgumentError", message: /does not fit baseModel/ },
    );
    await assert.rejects(
      () => ts.service.createSamplingClient({ modelPath: dropout }),
      { name: "InvalidArgumentError", field: "baseModel" },
    );
    await assert.rejects(
      () =>
        ts.service.createSamplingClient({
          modelPath: "/nonexistent/adapter",
          baseModel,
        }),
      { name: "NotFoundError" },
    );
    await assert.rejects(
      () => ts.service.createSamplingClient({ modelPath: "relative/dir" }),
      { name: "InvalidArgumentError", field: "modelPath" },
    );
    // Nothing changed: same weights, and the run goes on.
    assert.deepEqual(await forwardLogprobs(tc, batch), before);
    await tc.train(batchDatums(batch), { learningRate: 1e-2 });
  }),
});
