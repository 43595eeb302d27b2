/**
 * The demo: fine-tune the built-in `ultrasafe/usf-finance` model on a small
 * finance Q&A set, save a checkpoint, and show that the fine-tuned model now
 * answers the way it was taught where the base model did not.
 *
 * Run: `deno task demo` (flags: `--steps N`, `--lr X`).
 *
 * @module
 */
import * as bios from "../mod.ts";
import { FINANCE_QA } from "./data/finance_qa.ts";
import { promptIds, sftDatum } from "./sft_datum.ts";

const args = parseArgs(Deno.args);
const steps = args.steps ?? 100;
const learningRate = args.lr ?? 3e-3;
const baseModel = "ultrasafe/usf-finance";
const started = performance.now();

await using service = new bios.ServiceClient();
const caps = await service.getServerCapabilities();
log(
  `Bios demo: fine-tuning ${baseModel} on ${FINANCE_QA.length} finance Q&A pairs`,
);
log(
  `compute: ${caps.backend} (${caps.device})${
    caps.backendReason ? ` — ${caps.backendReason}` : ""
  }`,
);

const tc = await service.createLoraTrainingClient({
  baseModel,
  rank: 16,
  alpha: 32,
  seed: 0,
});
const tok = await tc.getTokenizer();
const batch = FINANCE_QA.map((ex) => sftDatum(tok, ex.prompt, ex.completion));
const weightSum = batch.reduce(
  (s, d) => s + (d.lossFnInputs.weights as number[]).reduce((a, b) => a + b, 0),
  0,
);

const base = await service.createSamplingClient({ baseModel });
const before = await answers(base);

let first = NaN, last = NaN;
for (let step = 1; step <= steps; step++) {
  // Submit both before awaiting either: they pipeline on the trainer.
  const fb = tc.forwardBackward(batch, "cross_entropy");
  const opt = tc.optimStep({ learningRate });
  const loss = (await fb).loss / weightSum;
  await opt;
  if (step === 1) first = loss;
  last = loss;
  progress(step, steps, loss);
}
Deno.stderr.writeSync(new TextEncoder().encode("\n"));

const ckpt = await tc.saveState("demo-final", { overwrite: true });
log(`saved training state: ${ckpt.path}`);
const tuned = await tc.saveWeightsAndGetSamplingClient("demo-model");
const after = await answers(tuned);

let learned = 0, baseRight = 0;
console.log("\nprompt → base model | fine-tuned model");
FINANCE_QA.forEach((ex, i) => {
  const want = ex.completion.trim();
  if (after[i] === want) learned++;
  if (before[i] === want) baseRight++;
  console.log(
    `${ex.prompt.split("\n")[0]}\n  base:       ${
      JSON.stringify(before[i])
    }\n  fine-tuned: ${JSON.stringify(after[i])}`,
  );
});
console.log(
  `\nloss per completion token: ${first.toFixed(3)} → ${
    last.toFixed(3)
  } over ${steps} steps; ` +
    `exact answers: base ${baseRight}/${FINANCE_QA.length}, fine-tuned ${learned}/${FINANCE_QA.length}; ` +
    `${((performance.now() - started) / 1000).toFixed(1)} s`,
);

/** Greedy answers of a sampler to every prompt, decoded and trimmed. */
async function answers(sc: bios.SamplingClient): Promise<string[]> {
  const out: string[] = [];
  for (const ex of FINANCE_QA) {
    const r = await sc.sample({
      prompt: bios.types.ModelInput.fromInts(promptIds(tok, ex.prompt)),
      samplingParams: { maxTokens: 40, temperature: 0, stop: "\n" },
    });
    out.push(tok.decode(r.sequences[0].tokens).trim());
  }
  return out;
}

function progress(step: number, total: number, loss: number): void {
  const width = 30;
  const done = Math.round((step / total) * width);
  const bar = "█".repeat(done) + "░".repeat(width - done);
  const line = `[${bar}] step ${step}/${total}  loss ${loss.toFixed(3)}`;
  const text = Deno.stderr.isTerminal()
    ? `\r${line}`
    : step % 10 === 0 || step === total
    ? `${line}\n`
    : "";
  Deno.stderr.writeSync(new TextEncoder().encode(text));
}

function log(s: string): void {
  console.error(s);
}

function parseArgs(argv: string[]): { steps?: number; lr?: number } {
  const out: { steps?: number; lr?: number } = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--steps") out.steps = Number(argv[++i]);
    else if (argv[i] === "--lr") out.lr = Number(argv[++i]);
  }
  return out;
}
