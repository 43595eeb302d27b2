/**
 * Helper process for checkpoint_test.ts: trains a tiny run and saves
 * checkpoints in a loop until it is killed. Prints `saved <runId> <i>` after
 * each round. Usage: `deno run -A tests/_crash_saver.ts <checkpointDir>`
 * with `BIOS_MODELS` naming the tiny models' catalog.
 *
 * @module
 */
import * as bios from "../mod.ts";
import { nextTokenDatum, SAMPLE_TEXTS, textIds, TINY } from "./_helpers.ts";

const checkpointDir = Deno.args[0];
if (!checkpointDir) throw new Error("usage: _crash_saver.ts <checkpointDir>");
const service = new bios.ServiceClient({ checkpointDir });
const tc = await service.createLoraTrainingClient({
  baseModel: TINY,
  rank: 4,
  alpha: 8,
  seed: 3,
});
for (let i = 0;; i++) {
  const datum = nextTokenDatum(textIds(SAMPLE_TEXTS[i % SAMPLE_TEXTS.length]));
  await tc.train([datum], { learningRate: 1e-2 });
  // A new name, an overwrite of a fixed one, and a sampler copy: every save path.
  await tc.saveState(`c${i}`);
  await tc.saveState("latest", { overwrite: true });
  await tc.saveWeightsForSampler("latest-sampler", { overwrite: true });
  console.log(`saved ${tc.runId} ${i}`);
}
