/**
 * Memory stays flat over many `saveWeightsAndGetSamplingClient()` + sample +
 * close cycles. Measured in a child process (`_sampler_cycles.ts`) that can
 * force full garbage collections, so that the heap's slack does not hide the
 * signal.
 *
 * The size of the signal: before samplers were closed and shared their base
 * weights, every cycle kept a sampler with its own copy of the tiny model
 * (35,168 f32 = 137 KiB), its adapter with gradients and Adam moments (4 ×
 * 5,260 f32 = 82 KiB) and the snapshot's host copy in its child spec: about
 * 290 KiB a cycle measured, 51 MiB over the 180 measured cycles. Now the
 * same cycles grow RSS by about 1.3 MiB in all (7 KiB a cycle).
 */
import assert from "node:assert/strict";
import type { CyclesReport } from "./_sampler_cycles.ts";

const CYCLES = 200;
const WARMUP = 20;
/** Most RSS growth allowed over the measured cycles, in MiB (the old code: 51). */
const MAX_GROWTH_MIB = 8;

Deno.test("memory stays flat over 200 snapshot + sample + close cycles", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      new URL("./_sampler_cycles.ts", import.meta.url).pathname,
      String(CYCLES),
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
  const growth = r.endRss - r.warmRss;
  assert.ok(
    growth < MAX_GROWTH_MIB,
    `RSS grew ${growth.toFixed(1)} MiB over ${r.measured} cycles (${
      (growth / r.measured * 1024).toFixed(0)
    } KiB a cycle): ${r.warmRss.toFixed(1)} → ${r.endRss.toFixed(1)} MiB`,
  );
  assert.equal(r.samplers, 0, "samplers still running after close");
});
