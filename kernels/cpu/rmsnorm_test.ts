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
    /rmsNorm: w must be \[3\], or \[D\] with D dividing 3 \(one norm per D-wide group\): got \[4\]/,
  );
});

Deno.test("rmsNorm with a weight of D over x [N, H·D] normalizes each head on its own", async () => {
  const n = 2, heads = 3, d = 4;
  const x = new Float32Array(n * heads * d).map((_, i) => (i % 7) - 3 + i / 10);
  const w = new Float32Array([1, 0.5, 2, 1.5]);
  const { y, rstd } = be.rmsNorm(
    be.fromArray(x, [n, heads * d]),
    be.fromArray(w, [d]),
    1e-6,
  );
  const got = await be.read(y);
  assert.deepEqual(rstd.shape, [n * heads]);
  for (let r = 0; r < n * heads; r++) {
    const row = x.subarray(r * d, (r + 1) * d);
    const ms = row.reduce((s, v) => s + v * v, 0) / d;
    const inv = 1 / Math.sqrt(ms + 1e-6);
    for (let i = 0; i < d; i++) {
      const want = row[i] * inv * w[i];
      assert.ok(Math.abs(got[r * d + i] - want) < 1e-5, `row ${r} col ${i}`);
    }
  }
  assert.throws(
    () =>
      be.rmsNorm(
        be.fromArray(x, [n, heads * d]),
        be.fromArray(new Float32Array(5), [5]),
        1e-6,
      ),
    /w must be \[12\], or \[D\] with D dividing 12/,
  );
});
