import assert from "node:assert/strict";
import { CpuBackend } from "../cpu/backend.ts";
import type { Backend, Tensor } from "../backend.ts";
import { haveAdapter, testBackend } from "./_open_for_test.ts";
import { close, rand } from "./_test_data.ts";

const be = await testBackend();
const opts = { sanitizeOps: false, sanitizeResources: false };
const cpu = new CpuBackend();

/** The same tensors on the gpu and the cpu. */
function both(shape: number[], seed: number): [Tensor, Tensor] {
  const data = rand(shape.reduce((a, b) => a * b, 1), seed, -2, 2);
  return [be!.fromArray(data, shape), cpu.fromArray(data, shape)];
}

/** Runs `f` on both backends; checks the outputs; returns the gpu's texture copies. */
async function flatCase(
  what: string,
  f: (b: Backend, i: 0 | 1) => Tensor[],
): Promise<{ copies: number; outs: Float32Array[] }> {
  const c0 = be!.ctx.textureCopies;
  const got = f(be!, 0);
  const copies = be!.ctx.textureCopies - c0;
  const want = f(cpu, 1);
  const outs = await be!.readMany(got);
  const wants = await cpu.readMany(want);
  outs.forEach((o, i) => close(o, wants[i], `${what} output ${i}`));
  return { copies, outs };
}

if (haveAdapter(be) && be.ctx.isFallback) {
  Deno.test({
    name:
      "webgpu texture-fed add, swiglu and rmsNorm (CPU adapters) match the cpu, forward and backward, bit-identical on rerun",
    ...opts,
    fn: async () => {
      // 36×20 = 720 floats: 180 texels, two full texture rows and a tail
      const [a, b, d] = [
        both([36, 20], 1),
        both([36, 20], 2),
        both([36, 20], 3),
      ];
      const w = both([20], 4);
      const cases: [string, number, (be: Backend, i: 0 | 1) => Tensor[]][] = [
        ["add", 2 * 2, (be, i) => [be.add(a[i], b[i])]],
        ["swiglu", 2 * 2, (be, i) => [be.swiglu(a[i], b[i])]],
        ["swigluBackward", 3 * 2, (be, i) => {
          const g = be.swigluBackward(d[i], a[i], b[i]);
          return [g.dgate, g.dup];
        }],
        // x (2 copies) and w (1)
        ["rmsNorm", 3, (be, i) => {
          const r = be.rmsNorm(a[i], w[i], 1e-5);
          return [r.y, r.rstd];
        }],
        // dy, x (2 each), w, rstd (1 each)
        ["rmsNormBackward", 6, (be, i) => {
          const rstd = be.rmsNorm(a[i], w[i], 1e-5).rstd;
          const g = be.rmsNormBackward(d[i], a[i], w[i], rstd);
          return [g.dx, g.dw];
        }],
      ];
      for (const [what, copies, f] of cases) {
        const first = await flatCase(what, f);
        // rmsNormBackward's own rmsNorm copies 3 more
        const extra = what === "rmsNormBackward" ? 3 : 0;
        assert.equal(first.copies, copies + extra, `${what}: texture copies`);
        const again = await flatCase(what, f);
        again.outs.forEach((o, i) =>
          assert.deepEqual(o, first.outs[i], `${what}: rerun output ${i}`)
        );
      }
    },
  });

  Deno.test({
    name:
      "webgpu texture-fed rope (CPU adapters) matches the cpu both ways and lays its table out once",
    ...opts,
    fn: async () => {
      // 2 sequences of 6 at offset 3, 2 heads of 16: 384 floats, one full
      // texture row and a tail
      const dims = { seqLen: 6, heads: 2, headDim: 16, offset: 3, theta: 1e4 };
      const x = both([12, 32], 8);
      const rope = (inverse: boolean) => (be: Backend, i: 0 | 1) => [
        be.rope(x[i], dims, inverse),
      ];
      // x (2 copies) and the cos/sin table (1), then x alone
      assert.equal((await flatCase("rope", rope(false))).copies, 2 + 1);
      const back = await flatCase("rope inverse", rope(true));
      assert.equal(back.copies, 2);
      const again = await flatCase("rope inverse", rope(true));
      assert.deepEqual(again.outs[0], back.outs[0], "rerun bit-identical");
      // half a head not a multiple of 4: storage-fed
      const odd = { ...dims, headDim: 6 };
      const y = both([12, 12], 9);
      const r = await flatCase("rope headDim 6", (be, i) => [
        be.rope(y[i], odd, false),
      ]);
      assert.equal(r.copies, 0);
    },
  });

  Deno.test({
    name:
      "webgpu add, swiglu and rmsNorm stay storage-fed where sizes are not whole texels",
    ...opts,
    fn: async () => {
      const [a, b] = [both([7, 5], 5), both([7, 5], 6)];
      const w = both([5], 7);
      assert.equal(
        (await flatCase("add", (be, i) => [be.add(a[i], b[i])])).copies,
        0,
      );
      assert.equal(
        (await flatCase("swiglu", (be, i) => [be.swiglu(a[i], b[i])])).copies,
        0,
      );
      const rms = await flatCase("rmsNorm", (be, i) => {
        const r = be.rmsNorm(a[i], w[i], 1e-5);
        const g = be.rmsNormBackward(b[i], a[i], w[i], r.rstd);
        return [r.y, g.dx, g.dw];
      });
      assert.equal(rms.copies, 0);
    },
  });
}
