/**
 * Child process of `sampler_memory_test.ts`: runs `cycles` rounds of
 * `saveWeightsAndGetSamplingClient()` + `sample` + `close()` on the tiny model
 * and prints, as one JSON line, the resident set size (MiB) after `warmup`
 * rounds and at the end, and how many samplers still run. It collects
 * garbage every 10 rounds and before each measure (run it with
 * `--v8-flags=--expose-gc`): left alone, the heap's slack (tens of MiB)
 * would hide a leak of this size.
 *
 * Usage: `deno run -A --v8-flags=--expose-gc tests/_sampler_cycles.ts <cycles> <warmup>`
 *
 * @module
 */
import * as bios from "../mod.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
} from "./_helpers.ts";
import { sharedBackend } from "../actors/compute.ts";
import { WebGpuBackend } from "../kernels/webgpu/backend.ts";

/** What the child prints. */
export interface CyclesReport {
  /** RSS in MiB after the warm-up rounds. */
  warmRss: number;
  /** RSS in MiB after the last round. */
  endRss: number;
  /** Rounds measured (after the warm-up). */
  measured: number;
  /** Samplers still running at the end. */
  samplers: number;
  /** The backend's name. */
  backend: string;
  /**
   * Device buffers the webgpu backend's pool had created after the warm-up
   * and at the end (absent on the CPU backends).
   */
  deviceBuffers?: { warm: number; end: number };
}

const gc = (globalThis as { gc?: () => void }).gc;

/** RSS in MiB after a full collection. */
function rss(): number {
  gc!();
  return Deno.memoryUsage().rss / 2 ** 20;
}

if (import.meta.main) {
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  const cycles = Number(Deno.args[0] ?? 200);
  const warmup = Number(Deno.args[1] ?? 20);
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient({
      baseModel: TINY,
      rank: 4,
      seed: 7,
    });
    await tc.train(SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t))), {
      learningRate: 1e-2,
    });
    const prompt = bios.types.ModelInput.fromInts(
      textIds("Q: 2+2?\nA:").slice(0, -1),
    );
    const be = (await sharedBackend()).backend;
    const created = () =>
      be instanceof WebGpuBackend ? be.ctx.poolStats().created : 0;
    let warmRss = 0;
    let warmBuffers = 0;
    for (let i = 0; i < cycles; i++) {
      const sc = await tc.saveWeightsAndGetSamplingClient();
      await sc.sample({
        prompt,
        samplingParams: { maxTokens: 2, temperature: 0, seed: 1 },
      });
      await sc.close();
      // Collect often: V8 keeps the pages a late collection frees, so
      // garbage left to pile up would count as growth.
      if (i % 10 === 9) gc!();
      if (i === warmup - 1) {
        warmRss = rss();
        warmBuffers = created();
      }
    }
    const endRss = rss();
    const c = await ts.service.connection();
    const { active } = await c.system.ref("samplers").ask<{ active: number }>(
      { op: "count_children" },
    );
    const report: CyclesReport = {
      warmRss,
      endRss,
      measured: cycles - warmup,
      samplers: active,
      backend: be.name,
      deviceBuffers: be instanceof WebGpuBackend
        ? { warm: warmBuffers, end: created() }
        : undefined,
    };
    console.log(JSON.stringify(report));
  } finally {
    await ts.close();
  }
}
