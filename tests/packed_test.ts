/**
 * Packed tensors (`zerosPacked`) and the in-place ops `write`, `zero`, `copy`
 * on every backend: views start at zero and do not bleed into each other;
 * AdamW and the sum of squares over packed tensors equal the same ops over
 * separate tensors (bit for bit for AdamW, which is elementwise; within 1e-6
 * relative for the sum, whose order of addition differs); a product with a
 * packed operand equals one with a plain tensor; on webgpu, AdamW over a
 * whole packed group is one dispatch, and the arena's buffer goes back to
 * the pool only when its last view is freed.
 */
import assert from "node:assert/strict";
import type { AdamStep, Backend, Tensor } from "../kernels/backend.ts";
import { testBackend } from "../kernels/webgpu/_open_for_test.ts";
import { TEST_BACKENDS } from "./_backends.ts";
import { WebGpuBackend } from "../kernels/webgpu/backend.ts";
import { Prng } from "../model/prng.ts";

/** LoRA-like shapes: pairs of [r, in] and [out, r], some not multiples of 4. */
const SHAPES: number[][] = [];
for (let i = 0; i < 20; i++) {
  const r = 4 + (i % 3), inp = 64 + 13 * i, out = 32 + 7 * i;
  SHAPES.push([r, inp], [out, r]);
}

function randoms(seed: number, shapes: number[][]): Float32Array[] {
  const rng = new Prng(seed);
  return shapes.map((s) =>
    rng.fillNormal(new Float32Array(s.reduce((a, b) => a * b, 1)))
  );
}

const STEP: AdamStep = {
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.01,
  step: 3,
  gradScale: 0.5,
};

/** Four lists (p, g, m, v) filled from seeds, packed or separate. */
function state(be: Backend, packed: boolean): Tensor[][] {
  return [11, 12, 13, 14].map((seed) => {
    const data = randoms(seed, SHAPES);
    if (seed === 14) data.forEach((d) => d.forEach((x, i) => d[i] = x * x));
    const ts = packed ? be.zerosPacked(SHAPES) : SHAPES.map((s) => be.zeros(s));
    ts.forEach((t, i) => be.write(t, data[i]));
    return ts;
  });
}

for (const [name, make, pkg] of TEST_BACKENDS) {
  const be = await make();
  const required = Deno.env.get("BIOS_REQUIRE_ALL") === "1";
  const ignore = !be && !required;
  if (ignore) {
    console.log(
      `packed tensors on ${name} skipped: unavailable (apt-get install ${pkg})`,
    );
  }
  const need = (): Backend => {
    if (!be) {
      throw new Error(`${name} backend unavailable (apt-get install ${pkg})`);
    }
    return be;
  };

  Deno.test({
    name: `${name}: packed views start at zero and writes stay in their view`,
    ignore,
    fn: async () => {
      const b = need();
      const ts = b.zerosPacked(SHAPES);
      assert.deepEqual(ts.map((t) => [...t.shape]), SHAPES);
      for (const x of await b.readMany(ts)) assert.ok(x.every((v) => v === 0));
      const data = randoms(5, SHAPES);
      ts.forEach((t, i) => i % 2 === 0 && b.write(t, data[i]));
      b.zero(ts[2]);
      const extra = randoms(6, [SHAPES[3]])[0];
      const src = b.fromArray(extra, SHAPES[3]);
      b.copy(ts[3], src);
      b.free(src);
      const got = await b.readMany(ts);
      got.forEach((x, i) => {
        const want = i === 2
          ? new Float32Array(x.length)
          : i === 3
          ? extra
          : i % 2 === 0
          ? data[i]
          : new Float32Array(x.length);
        assert.deepEqual(x, want, `view ${i}`);
      });
      assert.throws(
        () => b.write(ts[0], new Float32Array(3)),
        /write: data length 3 does not match/,
      );
      for (const t of ts) b.free(t);
    },
  });

  Deno.test({
    name:
      `${name}: AdamW and the sum of squares over packed tensors equal them over separate ones`,
    ignore,
    fn: async () => {
      const b = need();
      const sep = state(b, false), pk = state(b, true);
      const sqSep = await b.sumOfSquares(sep[1]);
      const sqPk = await b.sumOfSquares(pk[1]);
      assert.ok(
        Math.abs(sqPk - sqSep) <= 1e-6 * sqSep,
        `sum of squares ${sqPk} vs ${sqSep}`,
      );
      const dispatches = () =>
        b instanceof WebGpuBackend ? b.ctx.dispatches : 0;
      b.adamw(sep[0], sep[1], sep[2], sep[3], STEP);
      const d0 = dispatches();
      b.adamw(pk[0], pk[1], pk[2], pk[3], STEP);
      if (b instanceof WebGpuBackend) {
        assert.equal(dispatches() - d0, 1, "one dispatch for all tensors");
      }
      for (const which of [0, 2, 3]) {
        const [x, y] = [
          await b.readMany(sep[which]),
          await b.readMany(pk[which]),
        ];
        assert.deepEqual(y, x, `list ${which} bit-identical`);
      }
      // a subset of an arena is not swept whole, and still right
      const sub = (l: Tensor[]) => l.slice(0, 5);
      const before = await b.readMany(sub(sep[0]));
      b.adamw(sub(pk[0]), sub(pk[1]), sub(pk[2]), sub(pk[3]), STEP);
      b.adamw(sub(sep[0]), sub(sep[1]), sub(sep[2]), sub(sep[3]), STEP);
      const after = await b.readMany(sub(pk[0]));
      assert.deepEqual(after, await b.readMany(sub(sep[0])));
      assert.notDeepEqual(after, before);
      assert.deepEqual(
        await b.readMany(pk[0].slice(5)),
        await b.readMany(sep[0].slice(5)),
        "tensors outside the subset are untouched",
      );
      for (const l of [...sep, ...pk]) for (const t of l) b.free(t);
    },
  });

  Deno.test({
    name:
      `${name}: a product with packed operands equals one with plain tensors`,
    ignore,
    fn: async () => {
      const b = need();
      const shapes = [[3, 5], [128, 128], [128, 128]];
      const data = randoms(8, shapes);
      const pk = b.zerosPacked(shapes);
      pk.forEach((t, i) => b.write(t, data[i]));
      const plain = shapes.map((s, i) => b.fromArray(data[i], s));
      const copies = () => b instanceof WebGpuBackend ? b.ctx.textureCopies : 0;
      const t0 = copies();
      const cs: Tensor[] = [];
      for (
        const opts of [{}, { transB: true }, { transA: true, transB: true }]
      ) {
        const x = b.gemm(pk[1], pk[2], opts),
          y = b.gemm(plain[1], plain[2], opts);
        assert.deepEqual(
          await b.read(x),
          await b.read(y),
          JSON.stringify(opts),
        );
        cs.push(x, y);
      }
      if (b instanceof WebGpuBackend && b.ctx.isFallback) {
        assert.ok(copies() > t0, "the texture-fed path ran");
      }
      for (const t of [...pk, ...plain, ...cs]) b.free(t);
    },
  });
}

const gpu = await testBackend();
Deno.test({
  name:
    "webgpu: an arena's buffer returns to the pool after its last view is freed",
  ignore: !gpu && Deno.env.get("BIOS_REQUIRE_ALL") !== "1",
  fn: () => {
    if (!gpu) throw new Error("webgpu backend unavailable");
    const ts = gpu.zerosPacked([[1000], [1000]]);
    gpu.free(ts[0]);
    assert.throws(() => gpu.zero(ts[0]), /freed|used after free/);
    const idle = gpu.ctx.poolStats().idle;
    gpu.free(ts[1]);
    assert.equal(gpu.ctx.poolStats().idle, idle + 1);
  },
});
