/**
 * Where the host time of the benchmark's LoRA step goes, phase by phase.
 *
 * `deno run -A bench/step_profile.ts [--backend webgpu --steps 10 --batch 8 --seq 128]`
 * prints one JSON line: the median milliseconds of each phase over `--steps`
 * steps after one warm-up (forward, backward and AdamW are the host time
 * spent recording them on a GPU backend, where work only records; sync is
 * the wait for the GPU at the step's end), the median wait of a sync on an
 * idle queue (what any GPU wait costs in Deno), and on WebGPU the dispatches,
 * submits and bind groups made per step. When the phases outweigh the sync,
 * the host, not the GPU, bounds the step.
 *
 * `--kernels [--top 25] [--gpu-kernels]` instead times every WebGPU dispatch
 * on the GPU (timestamp queries, see kernels/webgpu/kernel_profiler.ts) and
 * prints two lines: the GPU milliseconds per training step, in all and of
 * the `--top` kernels (by name and workgroup grid), and the same per token
 * of a batch-1 generation; `--gpu-kernels` runs the kernels meant for real
 * GPUs on a CPU adapter.
 *
 * @module
 */
import { openWebGpuBackend, WebGpuBackend } from "../kernels/webgpu/backend.ts";
import type { KernelTime } from "../kernels/webgpu/kernel_profiler.ts";
import { generate } from "../model/generate.ts";
import { benchTokens, buildBenchStage } from "./bench_model.ts";
import { Flags } from "./flags.ts";
import { median } from "./stats.ts";
import { closeBackend, openBackend } from "./open_backend.ts";
import { emit } from "./timing.ts";
import { type StepPhase, trainStep } from "./train_worker.ts";

/** Kernels by GPU time, per `per` (steps or tokens). */
function ranked(
  totals: Map<string, KernelTime>,
  per: number,
  top: number,
): Record<string, unknown> {
  const list = [...totals].sort((a, b) => b[1].ms - a[1].ms);
  const round = (x: number) => Number(x.toFixed(3));
  return {
    gpuMs: round(list.reduce((a, [, t]) => a + t.ms, 0) / per),
    dispatches: list.reduce((a, [, t]) => a + t.count, 0) / per,
    top: list.slice(0, top).map(([label, t]) => ({
      kernel: label,
      count: t.count / per,
      ms: round(t.ms / per),
    })),
  };
}

/**
 * GPU ms by kernel: per training step over `--steps` steps after a warm-up,
 * and per token of a B1 generation of 64 tokens.
 */
async function kernelProfile(flags: Flags): Promise<void> {
  const be = await openWebGpuBackend({
    profileKernels: true,
    gpuKernels: flags.has("gpu-kernels"),
  });
  if (!be) {
    emit({ unavailable: "no WebGPU adapter" });
    return;
  }
  const prof = be.ctx.profiler!;
  const top = flags.int("top", 25);
  const step = trainStep(be, flags.int("batch", 8), flags.int("seq", 128));
  await step();
  await prof.reset();
  const steps = flags.int("steps", 10);
  for (let i = 0; i < steps; i++) await step();
  emit({
    backend: be.name,
    device: be.device,
    perTrainingStep: ranked(await prof.totals(), steps, top),
  });
  const { stage } = buildBenchStage(be);
  const tokens = 64;
  const decode = () =>
    generate(be, [stage], [...benchTokens(32, 7)], {
      numSamples: 1,
      maxTokens: tokens,
      seed: 1,
      stopTokens: [],
      temperature: 1,
      topK: -1,
      topP: 1,
      readEvery: 8,
    });
  await decode();
  await prof.reset();
  await decode();
  emit({ perSampledToken: ranked(await prof.totals(), tokens, top) });
  closeBackend(be);
}

if (import.meta.main && Deno.args.includes("--kernels")) {
  await kernelProfile(new Flags(Deno.args));
} else if (import.meta.main) {
  const flags = new Flags(Deno.args);
  const opened = await openBackend(flags.str("backend", "webgpu"));
  if (!opened.ok) {
    emit({ unavailable: opened.reason });
    Deno.exit(0);
  }
  const be = opened.backend;
  const gpu = be instanceof WebGpuBackend ? be.ctx : null;
  const step = trainStep(be, flags.int("batch", 8), flags.int("seq", 128));
  await step(); // warm-up: compiles pipelines, fills the pools
  const phases: Record<StepPhase | "total", number[]> = {
    forward: [],
    backward: [],
    adamw: [],
    sync: [],
    total: [],
  };
  const idle: number[] = [];
  const c0 = gpu && {
    dispatches: gpu.dispatches,
    submits: gpu.submits,
    made: gpu.bindGroups.misses,
  };
  const steps = flags.int("steps", 10);
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    let last = t0;
    await step(false, (p) => {
      const now = performance.now();
      phases[p].push(now - last);
      last = now;
    });
    phases.total.push(last - t0);
    const w0 = performance.now();
    await be.sync(); // nothing recorded: the cost of a wait itself
    idle.push(performance.now() - w0);
  }
  const ms = (xs: number[]) => Number(median(xs)!.toFixed(2));
  emit({
    backend: be.name,
    device: be.device,
    steps,
    medianMs: Object.fromEntries(
      Object.entries(phases).map(([k, v]) => [k, ms(v)]),
    ),
    idleSyncMs: ms(idle),
    perStep: gpu && c0 && {
      dispatches: (gpu.dispatches - c0.dispatches) / steps,
      submits: (gpu.submits - c0.submits) / steps,
      bindGroupsMade: (gpu.bindGroups.misses - c0.made) / steps,
    },
  });
  closeBackend(be);
}
