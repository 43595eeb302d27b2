/**
 * Device hand-off between a run's actors: on webgpu a training step waits
 * on the GPU once (the forward's logprobs) — activations and gradients pass
 * between the shards as device handles, AdamW and the commit point stay on
 * the device — and the results are bit-identical to passing everything by
 * value. Nothing parked is left behind: after the steps only the commit
 * point (one entry per shard), after close nothing.
 *
 * Each case runs tests/_step_waits.ts in a subprocess, since the process's
 * backend is chosen once (BIOS_BACKEND).
 */
import assert from "node:assert/strict";
import { NO_ADAPTER, testBackend } from "../kernels/webgpu/_open_for_test.ts";
import { nativeUnavailableReason } from "../kernels/native/backend.ts";

interface StepWaits {
  backend: string;
  fbWaits: number[];
  optWaits: number[];
  losses: number[];
  parkedAfterSteps: number;
  parkedAfterClose: number;
}

async function run(backend: string, byValue: boolean): Promise<StepWaits> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_step_waits.ts", import.meta.url).pathname,
      ...(byValue ? ["--by-value"] : []),
    ],
    env: { BIOS_BACKEND: backend },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
  if (!out.success) {
    throw new Error(
      `_step_waits.ts on ${backend} failed: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return JSON.parse(text);
}

const hasAdapter = (await testBackend()) !== null;
const required = Deno.env.get("BIOS_REQUIRE_ALL") === "1";
if (!hasAdapter && !required) console.log(NO_ADAPTER);

Deno.test({
  name:
    "webgpu: a training step waits once (the logprobs); by value gives the same losses",
  ignore: !hasAdapter && !required,
  fn: async () => {
    if (!hasAdapter) throw new Error(NO_ADAPTER);
    const h = await run("webgpu", false);
    assert.equal(h.backend, "webgpu");
    assert.deepEqual(h.fbWaits, [1, 1, 1], "one wait per forwardBackward");
    assert.deepEqual(h.optWaits, [0, 0, 0], "no wait in optimStep");
    assert.equal(h.parkedAfterSteps, 2, "the commit point of two shards");
    assert.equal(h.parkedAfterClose, 0);
    const v = await run("webgpu", true);
    assert.ok(
      v.fbWaits.every((w) => w >= 3),
      `by value, each stage boundary is a read-back: ${v.fbWaits}`,
    );
    assert.ok(v.optWaits.every((w) => w >= 2), `${v.optWaits}`);
    assert.equal(v.parkedAfterSteps, 0);
    assert.deepEqual(h.losses, v.losses, "bit-identical losses");
  },
});

const nativeMissing = nativeUnavailableReason();
if (nativeMissing && !required) {
  console.log(`native hand-off test skipped: ${nativeMissing}`);
}
Deno.test({
  name: "native: hand-off and by value give bit-identical losses",
  ignore: nativeMissing !== null && !required,
  fn: async () => {
    if (nativeMissing) throw new Error(nativeMissing);
    const [h, v] = [await run("native", false), await run("native", true)];
    assert.equal(h.backend, "native");
    assert.deepEqual(h.losses, v.losses);
    assert.equal(h.parkedAfterSteps, 2);
    assert.equal(h.parkedAfterClose, 0);
  },
});
