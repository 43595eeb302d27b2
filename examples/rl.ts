/**
 * Reinforcement learning on a verifiable task: a policy-gradient loop
 * (sample, score, `importance_sampling`) that teaches the built-in
 * `ultrasafe/usf-finance` model to answer "Q: <a>+<b>=" with the right last
 * digit of the sum — a reward a program checks, no labels given.
 *
 * Each step samples a group of answers per prompt from the current weights,
 * scores each 1 (right digit) or 0, takes the group's mean as the baseline
 * (advantage = reward − mean), and trains on the sampled tokens with the
 * importance-sampling loss and the sampler's own logprobs. It prints the mean
 * reward per step, and at the end the first and last steps' means.
 *
 * Run: `deno run -A examples/rl.ts [--steps 60]`
 *
 * @module
 */
import * as bios from "../mod.ts";

const steps = Number(
  Deno.args[Deno.args.indexOf("--steps") + 1] ?? 60,
) || 60;
const GROUP = 16; // samples per prompt
const PROMPTS = 8; // prompts per step

await using service = new bios.ServiceClient();
const tc = await service.createLoraTrainingClient({
  baseModel: "ultrasafe/usf-finance",
  rank: 16,
  seed: 1,
});
const tok = await tc.getTokenizer();

/** A deterministic stream of prompts: "Q: a+b=" with the answer's last digit. */
function prompt(step: number, i: number): { ids: number[]; answer: string } {
  const a = (step * 7 + i * 3) % 10, b = (step * 5 + i * 9 + 1) % 10;
  return {
    ids: [tok.bosTokenId!, ...tok.encode(`Q: ${a}+${b}=`)],
    answer: String((a + b) % 10),
  };
}

const means: number[] = [];
for (let step = 0; step < steps; step++) {
  const sc = await tc.saveWeightsAndGetSamplingClient();
  const batch: bios.types.DatumInput[] = [];
  let total = 0;
  for (let i = 0; i < PROMPTS; i++) {
    const p = prompt(step, i);
    const out = await sc.sample({
      prompt: bios.types.ModelInput.fromInts(p.ids),
      samplingParams: { maxTokens: 1, temperature: 1, seed: step * 100 + i },
      numSamples: GROUP,
    });
    const rewards: number[] = out.sequences.map((s) =>
      tok.decode(s.tokens) === p.answer ? 1 : 0
    );
    const mean = rewards.reduce((a, b) => a + b, 0) / GROUP;
    total += mean;
    out.sequences.forEach((s, k) => {
      const advantage = rewards[k] - mean;
      if (advantage === 0) return; // no signal in this sample
      const seq = [...p.ids, ...s.tokens];
      const n = seq.length - 1;
      // Only the sampled token carries the advantage and its sampler logprob.
      const at = (v: number) =>
        seq.slice(1).map((_, j) => (j === n - 1 ? v : 0));
      batch.push({
        modelInput: bios.types.ModelInput.fromInts(seq.slice(0, -1)),
        lossFnInputs: {
          targetTokens: seq.slice(1),
          logprobs: at(s.logprobs[0]),
          advantages: at(advantage),
        },
      });
    });
  }
  await sc.close();
  means.push(total / PROMPTS);
  if (batch.length > 0) {
    await tc.forwardBackward(batch, "importance_sampling");
    await tc.optimStep({ learningRate: 5e-3 });
  }
  console.log(`step ${step}: mean reward ${means.at(-1)!.toFixed(3)}`);
}
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const k = Math.max(1, Math.floor(steps / 5));
console.log(
  `mean reward: first ${k} steps ${
    avg(means.slice(0, k)).toFixed(3)
  }, last ${k} steps ${avg(means.slice(-k)).toFixed(3)}`,
);
