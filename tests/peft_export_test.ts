/**
 * A Bios checkpoint's adapter is a PEFT adapter: after a few training steps
 * and `saveState`, real PEFT loads the checkpoint folder unmodified
 * (`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model),
 * checkpoint_dir)`) and gives Bios's log-probabilities — on a tied model
 * with `lm_head` adapted (Qwen2, q/k/v biases) and on an untied Llama with
 * Llama 3's RoPE scaling.
 */
import assert from "node:assert/strict";
import { startTestService } from "./_helpers.ts";
import {
  batchDatums,
  forwardLogprobs,
  maxAbsDiff,
  serveHfFixtures,
} from "./_hf_models.ts";
import { pythonForTests, runPython } from "./_python.ts";

const py = await pythonForTests("PEFT export tests");

for (
  const [fixture, what] of [
    ["qwen2_tied", "a tied Qwen2 with lm_head adapted"],
    ["llama3_scaling", "an untied Llama 3 (rope scaling)"],
  ] as const
) {
  Deno.test({
    name:
      `PEFT loads a Bios checkpoint of ${what} unmodified and gives Bios's logprobs`,
    ignore: py.ignore,
    fn: async () => {
      if (py.python === null) throw new Error(`Python: ${py.missing}`);
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
          trainUnembed: true, // lm_head too, tied or not
          seed: 7,
        });
        for (let i = 0; i < 3; i++) {
          await tc.train(
            batchDatums(batch),
            { learningRate: 2e-2 },
          );
        }
        const { path } = await tc.saveState("export");
        const dir = `${ts.checkpointDir}/${path.slice("bios://".length)}`;
        const got = await forwardLogprobs(tc, batch);
        const peft = await runPython<
          { logprobs: number[][]; warnings: string[] }
        >(
          "peft_interop.py",
          {
            action: "logprobs",
            model: models.modelDir(fixture),
            adapter: dir,
            ...batch,
          },
        );
        const base = await runPython<{ logprobs: number[][] }>(
          "peft_interop.py",
          { action: "logprobs", model: models.modelDir(fixture), ...batch },
        );
        const moved = maxAbsDiff(base.logprobs, peft.logprobs);
        const diff = maxAbsDiff(got, peft.logprobs);
        console.log(
          `${fixture}: max |Δ logprob| Bios vs PEFT ${
            diff.toExponential(2)
          } (the adapter moved them by up to ${moved.toFixed(3)})`,
        );
        // Only PEFT's note that a tied layer (lm_head) carries an adapter:
        // true, and why merging needs care (Bios's merge unties the head).
        assert.deepEqual(
          peft.warnings.filter((w) => !w.includes("tie_word_embeddings=True")),
          [],
          "PEFT loaded it without another warning (no missing or unused keys)",
        );
        assert.ok(moved > 0.05, `training changed the logprobs: ${moved}`);
        assert.ok(diff < 1e-4, `max |Δ logprob| ${diff}`);
      } finally {
        await ts.close();
        await models.remove();
      }
    },
  });
}
