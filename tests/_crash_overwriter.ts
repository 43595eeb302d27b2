/**
 * Helper process for checkpoint_recovery_test.ts: trains a tiny run, saves
 * `latest` (step 1), trains on, and overwrites `latest` (step 2); at save step
 * `<step>` of that overwrite it prints `at <step>` and stops dead, waiting to
 * be killed with SIGKILL. Prints `run <runId>` first, and `survived` if the
 * step never came. Usage:
 * `deno run -A tests/_crash_overwriter.ts <checkpointDir> <step>` with
 * `BIOS_MODELS` naming the tiny models' catalog.
 *
 * @module
 */
import { nextTokenDatum, SAMPLE_TEXTS, textIds, TINY } from "./_helpers.ts";
import { startFaultNode } from "./_fault_node.ts";

const [checkpointDir, step] = Deno.args;
if (!checkpointDir || !step) {
  throw new Error("usage: _crash_overwriter.ts <checkpointDir> <step>");
}
let armed = false;
const node = await startFaultNode(checkpointDir, (s) => {
  if (!armed || s !== step) return;
  console.log(`at ${s}`);
  // Stop dead here, mid-save, until the parent's SIGKILL.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
});
const tc = await node.createRun({
  baseModel: TINY,
  rank: 4,
  alpha: 8,
  seed: 3,
});
console.log(`run ${tc.runId}`);
const datum = nextTokenDatum(textIds(SAMPLE_TEXTS[0]));
await tc.train([datum], { learningRate: 1e-2 });
await tc.saveState("latest");
await tc.train([datum], { learningRate: 1e-2 });
armed = true;
await tc.saveState("latest", { overwrite: true });
console.log("survived");
await node.close();
