import assert from "node:assert/strict";
import { cpuSampleLanes } from "./backend.ts";
import { TEX_LOOP_BUDGET } from "./shaders/matmul.ts";

Deno.test("sampling lanes on CPU adapters: fewest that keep a lane's loops within llvmpipe's limit, 8 to max", () => {
  assert.equal(cpuSampleLanes(259, 1024), 8);
  assert.equal(cpuSampleLanes(32000, 1024), 256);
  assert.equal(cpuSampleLanes(152064, 256), 256);
  for (const v of [2, 259, 4096, 32000, 50257, 152064]) {
    const lanes = cpuSampleLanes(v, 1024);
    assert.ok(lanes >= 8 && lanes <= 1024, `v ${v}: ${lanes} lanes`);
    assert.equal(lanes & (lanes - 1), 0, `v ${v}: ${lanes} not a power of two`);
    // ~215 passes over a lane's share of the row, each with its reduction
    const trips = 215 * (Math.ceil(v / lanes) + Math.log2(lanes));
    assert.ok(
      trips < TEX_LOOP_BUDGET,
      `v ${v}: ${trips} trips at ${lanes} lanes`,
    );
  }
});
