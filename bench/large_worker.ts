/**
 * Worker: the large benchmark model (Qwen2.5-0.5B's shape, bf16 base weights:
 * bench/large_model.ts) on one Bios backend.
 *
 * `deno run -A bench/large_worker.ts train --backend native [--batch 4 --seq 256]`
 * `deno run -A bench/large_worker.ts sample --backend native [--batches 1,8 --prompt 32 --max-tokens 16]`
 *
 * Prints one JSON line with `tokensPerSecond` and `peakRssBytes` (VmHWM, the
 * process's peak resident memory, model building included), or
 * `{"unavailable": reason}`.
 *
 * train: one step as bench/train_worker.ts's (forward, cross-entropy
 * gradient, backward, AdamW over the LoRA tensors, sync); one warm-up step
 * and one timed step. Then the head alone (final norm, the 151,936-row tied
 * head, log-softmax and gather, and their backward) is timed on the same rows:
 * `headShare` is its share of the step.
 * sample: `generate()` of `--max-tokens` tokens at temperature 1 for each
 * batch size after a 2-token warm-up; `sampleShare` is the share of the time
 * that drawing the tokens from the logits (`Backend.sample`) takes.
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import { generate } from "../model/generate.ts";
import { Prng } from "../model/prng.ts";
import { Flags } from "./flags.ts";
import { trainStep } from "./train_worker.ts";
import { buildLargeStage, LARGE_CONFIG, peakRssBytes } from "./large_model.ts";
import { closeBackend, openBackend } from "./open_backend.ts";
import { emit } from "./timing.ts";

const V = LARGE_CONFIG.vocabSize;

function tokens(n: number, seed: number): Int32Array {
  const rng = new Prng(seed);
  return Int32Array.from({ length: n }, () => rng.nextInt(V));
}

/** Seconds of one LoRA step and of the head's share of it. */
async function train(be: Backend, batch: number, seq: number) {
  const model = buildLargeStage(be);
  const n = batch * seq;
  const step = trainStep(be, batch, seq, model, tokens);
  const loss = await step(true);
  let t0 = performance.now();
  await step();
  const seconds = (performance.now() - t0) / 1000;
  const targets = tokens(n, 100);
  // the head alone, on hidden states of the same shape
  const w = model.stage.weights;
  const x = be.fromArray(new Float32Array(n * LARGE_CONFIG.hiddenSize), [
    n,
    LARGE_CONFIG.hiddenSize,
  ]);
  const tg = be.fromInts(targets, [n]);
  t0 = performance.now();
  const { y: hn, rstd } = be.rmsNorm(x, w.finalNorm!, LARGE_CONFIG.rmsNormEps);
  const logits = be.linear(hn, w.lmHead!);
  const { logprobs, lse } = be.logSoftmaxGather(logits.y, tg);
  const dlp = be.fromArray(new Float32Array(n).fill(-1), [n]);
  const dlogits = be.logSoftmaxGatherBackward(dlp, logits.y, tg, lse);
  const g = be.linearBackward(dlogits, hn, w.lmHead!);
  const dx = be.rmsNormBackward(g.dx, x, w.finalNorm!, rstd, {
    weightGrad: false,
  });
  await be.read(dx.dx);
  const head = (performance.now() - t0) / 1000;
  for (const t of [x, tg, hn, rstd, logits.y, logprobs, lse, dlp, dlogits]) {
    be.free(t);
  }
  be.free(g.dx);
  be.free(dx.dx);
  return {
    tokensPerSecond: n / seconds,
    steps: 1,
    seconds,
    loss,
    headSeconds: head,
    headShare: head / seconds,
  };
}

/** Tokens/s of generation per batch size, and the share of the draws. */
async function sample(
  be: Backend,
  batches: number[],
  promptLen: number,
  maxTokens: number,
) {
  const { stage } = buildLargeStage(be);
  const prompt = [...tokens(promptLen, 7)];
  const tps: Record<string, number> = {};
  const share: Record<string, number> = {};
  for (const b of batches) {
    const run = (n: number) =>
      generate(be, [stage], prompt, {
        numSamples: b,
        maxTokens: n,
        temperature: 1,
        topK: -1,
        topP: 1,
        seed: 3,
        stopTokens: [],
        readEvery: be.name === "webgpu" ? 8 : 1,
      });
    await run(2);
    let t0 = performance.now();
    await run(maxTokens);
    const seconds = (performance.now() - t0) / 1000;
    tps[String(b)] = (b * maxTokens) / seconds;
    // the draws alone: maxTokens samples from [b, V] logits
    const rng = new Prng(5);
    const logits = be.fromArray(
      Float32Array.from({ length: b * V }, () => rng.nextFloat() * 10),
      [b, V],
    );
    const u = be.fromArray(new Float32Array(b).fill(0.5), [b]);
    t0 = performance.now();
    for (let i = 0; i < maxTokens; i++) {
      const d = be.sample(logits, u, { temperature: 1, topK: -1, topP: 1 });
      await be.readInts(d.tokens);
      be.free(d.tokens);
      be.free(d.logprobs);
    }
    share[String(b)] = (performance.now() - t0) / 1000 / seconds;
    be.free(logits);
    be.free(u);
  }
  return {
    tokensPerSecond: tps,
    sampleShare: share,
    promptTokens: promptLen,
    maxTokens,
  };
}

if (import.meta.main) {
  const flags = new Flags(Deno.args.slice(1));
  const mode = Deno.args[0];
  const opened = await openBackend(flags.str("backend"));
  if (!opened.ok) {
    emit({ unavailable: opened.reason });
  } else {
    const be = opened.backend;
    const r = mode === "sample"
      ? await sample(
        be,
        flags.str("batches", "1,8").split(",").map(Number),
        flags.int("prompt", 32),
        flags.int("max-tokens", 16),
      )
      : await train(be, flags.int("batch", 4), flags.int("seq", 256));
    emit({
      backend: be.name,
      device: be.device,
      ...r,
      peakRssBytes: peakRssBytes(),
    });
    closeBackend(be);
  }
}
