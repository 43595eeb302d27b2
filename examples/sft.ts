/**
 * Supervised fine-tuning on the built-in finance Q&A set, in the cookbook's
 * style: mini-batches, the next batch submitted before the last one is
 * awaited (pipelining), a held-out forward-only evaluation, periodic
 * checkpoints named by step, and one JSON line of metrics per step on stdout.
 *
 * Run: `deno run -A examples/sft.ts [--model NAME] [--epochs N]`
 *
 * @module
 */
import * as bios from "../mod.ts";
import { FINANCE_QA } from "./data/finance_qa.ts";
import { sftDatum } from "./sft_datum.ts";

const argv = Deno.args;
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const baseModel = opt("model", "ultrasafe/usf-finance");
const epochs = Number(opt("epochs", "20"));
const batchSize = 3;

await using service = new bios.ServiceClient();
const tc = await service.createLoraTrainingClient({
  baseModel,
  rank: 16,
  alpha: 32,
  seed: 1,
});
const tok = await tc.getTokenizer();
const all = FINANCE_QA.map((ex) => sftDatum(tok, ex.prompt, ex.completion));
const heldOut = all.slice(-2);
const train = all.slice(0, -2);
const tokens = (b: bios.types.DatumInput[]) =>
  b.reduce(
    (s, d) =>
      s + (d.lossFnInputs.weights as number[]).reduce((a, w) => a + w, 0),
    0,
  );

const batches: bios.types.DatumInput[][] = [];
for (let e = 0; e < epochs; e++) {
  for (let i = 0; i < train.length; i += batchSize) {
    batches.push(train.slice(i, i + batchSize));
  }
}

// Keep one step in flight: submit step k+1 before awaiting step k.
type Pending = {
  fb: bios.APIFuture<bios.types.ForwardBackwardOutput>;
  opt: bios.APIFuture<bios.types.OptimStepResponse>;
};
let inFlight: Pending | undefined;
let step = 0;
const t0 = performance.now();
for (let k = 0; k <= batches.length; k++) {
  const next = k < batches.length
    ? {
      fb: tc.forwardBackward(batches[k], "cross_entropy"),
      opt: tc.optimStep({ learningRate: 3e-3 }),
    }
    : undefined;
  if (inFlight) {
    const fb = await inFlight.fb;
    const o = await inFlight.opt;
    step++;
    const row: Record<string, number> = {
      step,
      "train_mean_nll": fb.loss / tokens(batches[step - 1]),
      "learning_rate": o.metrics["learning_rate:mean"],
      "time/total": (performance.now() - t0) / 1000,
    };
    if (step % 10 === 0) {
      const ev = await tc.forward(heldOut, "cross_entropy");
      row["test_mean_nll"] = ev.loss / tokens(heldOut);
      const ck = await tc.saveState(String(step).padStart(6, "0"));
      console.error(`checkpoint ${ck.path}`);
    }
    console.log(JSON.stringify(row));
  }
  inFlight = next;
}
const final = await tc.saveState("final");
console.error(`final checkpoint ${final.path}`);
