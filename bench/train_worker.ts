/**
 * Worker: LoRA training throughput of one Bios backend on the benchmark model.
 *
 * `deno run -A bench/train_worker.ts --backend native [--batch 8 --seq 128]`
 * prints one JSON line: `{"backend", "device", "tokensPerSecond", "steps",
 * "seconds", "loss"}`, or `{"unavailable": reason}`.
 *
 * One step is what a parameter shard does for a whole model in one stage:
 * Stage.forward over every layer, the cross-entropy gradient
 * (dlogprobs = −weights, all weights 1), Stage.backward, AdamW over every LoRA
 * tensor, zeroing the gradients, then `await be.sync()`. One warm-up step,
 * then steps until at least 2 and `--seconds` (at most 8; one step when a step
 * takes over 3 s). Tokens/s = B·T · steps / seconds.
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import type { LoraSet } from "../model/lora.ts";
import type { Stage } from "../model/stage.ts";
import { BENCH_ADAM, benchTokens, buildBenchStage } from "./bench_model.ts";
import { Flags } from "./flags.ts";
import { closeBackend, openBackend } from "./open_backend.ts";
import { emit, timeRepeated } from "./timing.ts";

/** The phases of a step, for {@linkcode trainStep}'s `mark`. */
export type StepPhase = "forward" | "backward" | "adamw" | "sync";

/**
 * The benchmark's LoRA step on `be` (see the module doc; another `model` and
 * token stream can be given, as the large model's worker does): returns `step`,
 * which records forward, backward and AdamW, then syncs, calling `mark`
 * after each phase (bench/step_profile.ts times them), and reads the loss
 * when `readLoss` is set.
 */
export function trainStep(
  be: Backend,
  batch: number,
  seq: number,
  model: { stage: Stage; lora: LoraSet } = buildBenchStage(be),
  tokens: (n: number, seed: number) => Int32Array = benchTokens,
): (readLoss?: boolean, mark?: (p: StepPhase) => void) => Promise<number> {
  const { stage, lora } = model;
  const n = batch * seq;
  // Inputs are tokens 0..T-1 of a random stream, targets 1..T (next-token).
  const ids = new Int32Array(n), targets = new Int32Array(n);
  for (let b = 0; b < batch; b++) {
    const s = tokens(seq + 1, 100 + b);
    ids.set(s.subarray(0, seq), b * seq);
    targets.set(s.subarray(1), b * seq);
  }
  const minusWeights = new Float32Array(n).fill(-1);
  const rows = { batch, seqLen: seq };
  return async (readLoss = false, mark = () => {}) => {
    let loss = NaN;
    const { out, ctx } = stage.forward(
      be.fromInts(ids, [n]),
      rows,
      be.fromInts(targets, [n]),
    );
    if (readLoss) {
      const lp = await be.read(out);
      loss = -lp.reduce((a, x) => a + x, 0) / n;
    }
    mark("forward");
    const dlp = be.fromArray(minusWeights, [n]);
    stage.backward(ctx, dlp);
    be.free(dlp);
    be.free(out);
    mark("backward");
    lora.step++;
    be.adamw(
      lora.keys.map((k) => lora.params.get(k)!),
      lora.keys.map((k) => lora.grads.get(k)!),
      lora.keys.map((k) => lora.m.get(k)!),
      lora.keys.map((k) => lora.v.get(k)!),
      { ...BENCH_ADAM, step: lora.step, gradScale: 1 },
    );
    lora.zeroGrads();
    mark("adamw");
    await be.sync();
    mark("sync");
    return loss;
  };
}

/** Build the model on `be` and time LoRA steps; see the module doc. */
export async function measureTraining(
  be: Backend,
  batch: number,
  seq: number,
  minSeconds: number,
): Promise<
  { tokensPerSecond: number; steps: number; seconds: number; loss: number }
> {
  const run = trainStep(be, batch, seq);
  const n = batch * seq;
  const step = async () => {
    await run();
  };
  // The warm-up step also reads the loss once, as a sanity figure.
  const w0 = performance.now();
  const loss = await run(true);
  const slow = performance.now() - w0 > 3000;
  const t = await timeRepeated(step, {
    warmup: 0,
    minRuns: slow ? 1 : 2,
    maxRuns: 8,
    minSeconds: slow ? 0 : minSeconds,
  });
  return {
    tokensPerSecond: (n * t.runs) / t.seconds,
    steps: t.runs,
    seconds: t.seconds,
    loss,
  };
}

if (import.meta.main) {
  const flags = new Flags(Deno.args);
  const opened = await openBackend(flags.str("backend"));
  if (!opened.ok) {
    emit({ unavailable: opened.reason });
  } else {
    const be = opened.backend;
    const r = await measureTraining(
      be,
      flags.int("batch", 8),
      flags.int("seq", 128),
      flags.num("seconds", 2),
    );
    emit({ backend: be.name, device: be.device, ...r });
    closeBackend(be);
  }
}
