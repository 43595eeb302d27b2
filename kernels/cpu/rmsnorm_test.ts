import assert from "node:assert/strict";
import { checkGradients } from "../_fd.ts";
import { CpuBackend } from "./backend.ts";
import { Rng } from "./_random.ts";

const be = new CpuBackend();

Deno.test("rmsNorm() hand-worked row", () => {
  // x = [3, 4]: mean(x²) = 12.5, rstd = 1/sqrt(12.5)
  const { y, rstd } = be.rmsNorm(
    be.fromArray(new Float32Array([3, 4]), [1, 2]),
    be.fromArray(new Float32Array([1, 2]), [2]),
    0,
  );
  const r = 1 / Math.sqrt(12.5);
  assert.ok(Math.abs(be.f32View(rstd)[0] - r) < 1e-7);
  const got = be.f32View(y);
  assert.ok(Math.abs(got[0] - 3 * r) < 1e-6 && Math.abs(got[1] - 8 * r) < 1e-6);
});

Deno.test("rmsNormBackward() dx, dw match finite differences", () => {
  const rng = new Rng(4);
  const [n, c] = [4, 9];
  const x = rng.floats(n * c),
    w = rng.floats(c, 0.5, 1.5),
    dy = rng.floats(n * c);
  const T = (d: Float32Array, s: number[]) => be.fromArray(d, s);
  const f = be.rmsNorm(T(x, [n, c]), T(w, [c]), 1e-5);
  const g = be.rmsNormBackward(T(dy, [n, c]), T(x, [n, c]), T(w, [c]), f.rstd);
  checkGradients({
    name: "rmsNorm",
    inputs: [x, w],
    forward: () => [be.f32View(be.rmsNorm(T(x, [n, c]), T(w, [c]), 1e-5).y)],
    upstream: [dy],
    grads: [be.f32View(g.dx), be.f32View(g.dw)],
  });
});

Deno.test("rmsNorm() names mismatched shapes", () => {
  assert.throws(
    () => be.rmsNorm(be.zeros([2, 3]), be.zeros([4]), 1e-5),
    /rmsNorm: w must be \[3\]: got \[4\]/,
  );
});
