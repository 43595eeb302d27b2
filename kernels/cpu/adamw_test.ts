import assert from "node:assert/strict";
import { CpuBackend } from "./backend.ts";

const be = new CpuBackend();

Deno.test("adamw() two steps match torch.optim.AdamW worked by hand", () => {
  // torch.optim.AdamW([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), p = 1:
  // step 1, g = 0.5: p = 1·(1 − 0.001) = 0.999; m = 0.05; v = 0.00025;
  //   denom = sqrt(0.00025)/sqrt(0.001) + 1e-8 = 0.5 + 1e-8; p −= (0.1/0.1)·0.05/denom → 0.899
  // step 2, g = −0.25: p = 0.899·0.999 = 0.898101; m = 0.045 − 0.025 = 0.02;
  //   v = 0.00024975 + 0.0000625 = 0.00031225; bc1 = 0.19, bc2 = 0.001999;
  //   denom = sqrt(0.00031225)/sqrt(0.001999) + 1e-8; p −= (0.1/0.19)·0.02/denom
  const p = be.fromArray(new Float32Array([1]), [1]);
  const m = be.zeros([1]);
  const v = be.zeros([1]);
  const hyper = {
    lr: 0.1,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0.01,
    gradScale: 1,
  };
  be.adamw([p], [be.fromArray(new Float32Array([0.5]), [1])], [m], [v], {
    ...hyper,
    step: 1,
  });
  assert.ok(Math.abs(be.f32View(p)[0] - 0.899) < 1e-6, `${be.f32View(p)[0]}`);
  be.adamw([p], [be.fromArray(new Float32Array([-0.25]), [1])], [m], [v], {
    ...hyper,
    step: 2,
  });
  const denom = Math.sqrt(0.00031225) / Math.sqrt(0.001999) + 1e-8;
  const want = 0.898101 + (0.1 / 0.19) * 0.02 / denom * -1;
  assert.ok(
    Math.abs(be.f32View(p)[0] - want) < 1e-6,
    `${be.f32View(p)[0]} vs ${want}`,
  );
  assert.ok(Math.abs(be.f32View(m)[0] - 0.02) < 1e-8);
  assert.ok(Math.abs(be.f32View(v)[0] - 0.00031225) < 1e-9);
});

Deno.test("adamw() gradScale multiplies gradients first", () => {
  const run = (g: number, scale: number) => {
    const p = be.fromArray(new Float32Array([0.3]), [1]);
    const m = be.zeros([1]), v = be.zeros([1]);
    const h = {
      lr: 1e-3,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-12,
      weightDecay: 0,
      step: 1,
      gradScale: scale,
    };
    be.adamw([p], [be.fromArray(new Float32Array([g]), [1])], [m], [v], h);
    return [be.f32View(p)[0], be.f32View(m)[0], be.f32View(v)[0]];
  };
  assert.deepEqual(run(0.8, 0.5), run(0.4, 1));
});

Deno.test("adamw() names mismatched shapes and lengths", () => {
  const h = {
    lr: 1,
    beta1: 0.9,
    beta2: 0.9,
    eps: 1e-8,
    weightDecay: 0,
    step: 1,
    gradScale: 1,
  };
  assert.throws(
    () => be.adamw([be.zeros([2])], [], [], [], h),
    /adamw: params, grads, m and v must have the same length/,
  );
  assert.throws(
    () =>
      be.adamw([be.zeros([2])], [be.zeros([3])], [be.zeros([2])], [
        be.zeros([2]),
      ], h),
    /adamw: grads\[0\] \[3\] must have the shape of params\[0\] \[2\]/,
  );
  assert.throws(
    () => be.adamw([], [], [], [], { ...h, step: 0 }),
    /adamw: step must be an integer ≥ 1: got 0/,
  );
});
