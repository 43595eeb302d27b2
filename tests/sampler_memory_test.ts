/**
 * Memory stays flat over many `saveWeightsAndGetSamplingClient()` + sample +
 * close cycles. Measured in a child process (`_sampler_cycles.ts`) that can
 * force full garbage collections, so that the heap's slack does not hide the
 * signal. On the CPU backends (`cpu`, `native`: the default here) device
 * memory is this process's memory, and RSS is checked; on webgpu the buffer
 * pool must create no buffer after the warm-up (freed buffers are reused),
 * and RSS is not checked: with lavapipe it steps up by about 18 MiB every few
 * hundred rounds while the pool, the caches and the JS heap stay flat.
 *
 * The size of the signal: before samplers were closed and shared their base
 * weights, every cycle kept a sampler with its own copy of the tiny model
 * (35,168 f32 = 137 KiB), its adapter with gradients and Adam moments (4 ×
 * 5,260 f32 = 82 KiB) and the snapshot's host copy in its child spec: 309
 * KiB a cycle measured, 60 MiB over the 200 measured cycles. Now the same
 * cycles grow RSS by 0.5–0.7 MiB in all (about 3 KiB a cycle).
 */
import assert from "node:assert/strict";
import type { CyclesReport } from "./_sampler_cycles.ts";

/**
 * Rounds before the first measure. Long enough for the bounded caches to
 * fill (on webgpu, the bind-group cache of 4,096 groups fills in about 100).
 */
const WARMUP = 120;
/** Rounds measured after the warm-up. */
const MEASURED = 200;
/** Most RSS growth allowed over the measured cycles, in MiB (the old code: 60). */
const MAX_GROWTH_MIB = 4;

Deno.test("memory stays flat over 200 snapshot + sample + close cycles after a warm-up", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      new URL("./_sampler_cycles.ts", import.meta.url).pathname,
      String(WARMUP + MEASURED),
      String(WARMUP),
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.ok(
    out.success,
    `child failed: ${new TextDecoder().decode(out.stderr)}\n${stdout}`,
  );
  const line = stdout.trim().split("\n").at(-1) ?? "";
  const r = JSON.parse(line) as CyclesReport;
  if (r.deviceBuffers) {
    assert.equal(
      r.deviceBuffers.end,
      r.deviceBuffers.warm,
      `the webgpu pool created ${
        r.deviceBuffers.end - r.deviceBuffers.warm
      } buffers over ${r.measured} cycles`,
    );
  } else {
    const growth = r.endRss - r.warmRss;
    assert.ok(
      growth < MAX_GROWTH_MIB,
      `RSS grew ${
        growth.toFixed(1)
      } MiB over ${r.measured} cycles on ${r.backend} (${
        (growth / r.measured * 1024).toFixed(0)
      } KiB a cycle): ${r.warmRss.toFixed(1)} → ${r.endRss.toFixed(1)} MiB`,
    );
  }
  assert.equal(r.samplers, 0, "samplers still running after close");
});
