/**
 * Subprocess for tests/device_handoff_test.ts: trains a few steps through the
 * embedded service on the backend `BIOS_BACKEND` names and prints one JSON
 * line: the backend, GPU waits (read-backs and syncs) per forwardBackward
 * and per optimStep (webgpu only), the losses, and how many entries the
 * device hand-off store holds after the steps and after close.
 *
 * `BIOS_BACKEND=webgpu deno run -A tests/_step_waits.ts [--by-value]`
 * (`--by-value`: the service's `deviceHandoff: false`)
 *
 * @module
 */
import { sharedBackend } from "../actors/compute.ts";
import { deviceHandoff } from "../actors/device_handoff.ts";
import { WebGpuBackend } from "../kernels/webgpu/backend.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
} from "./_helpers.ts";

const ts = await startTestService({
  deviceHandoff: !Deno.args.includes("--by-value"),
});
const be = (await sharedBackend()).backend;
const waits = () => be instanceof WebGpuBackend ? be.ctx.waits : -1;
const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));
const out = {
  backend: be.name,
  fbWaits: [] as number[],
  optWaits: [] as number[],
  losses: [] as number[],
  parkedAfterSteps: 0,
  parkedAfterClose: 0,
};
try {
  const tc = await ts.service.createLoraTrainingClient({
    baseModel: TINY,
    rank: 4,
    seed: 1,
  });
  for (let i = 0; i < 3; i++) {
    const w0 = waits();
    out.losses.push((await tc.forwardBackward(batch, "cross_entropy")).loss);
    const w1 = waits();
    await tc.optimStep({ learningRate: 1e-2 });
    out.fbWaits.push(w1 - w0);
    out.optWaits.push(waits() - w1);
  }
  out.parkedAfterSteps = deviceHandoff.size;
} finally {
  await ts.close();
}
out.parkedAfterClose = deviceHandoff.size;
console.log(JSON.stringify(out));
