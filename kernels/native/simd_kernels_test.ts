// The WebAssembly SIMD paths of the native backend against the CPU reference,
// at shapes the backend conformance suite does not reach (widths that are
// multiples of 4, several blocks per call, the benchmark model's shapes),
// and bit-identical reruns.
import assert from "node:assert/strict";
import type { Backend, Tensor } from "../backend.ts";
import { assertClose, type Tolerance } from "../_conformance.ts";
import { Rng } from "../cpu/_random.ts";
import { CpuBackend } from "../cpu/backend.ts";
import { openNativeBackend } from "./backend.ts";
import { SimdKernels } from "./simd_kernels.ts";
import { halfToF32, narrowToHalf, widenHalf } from "../half.ts";

const TOL: Tolerance = { abs: 1e-5, rel: 1e-4 };
const ref = new CpuBackend();

Deno.test("SimdKernels.swigluForward/Backward match the reference loops, with tails and across chunks", () => {
  const simd = new SimdKernels();
  const rng = new Rng(5);
  for (const n of [1, 3, 4, 17, 8192 * 2 + 5]) {
    const g = rng.floats(n, -12, 12), u = rng.floats(n, -2, 2);
    const dh = rng.floats(n);
    if (n > 4) g.set([100, -100, 88, -88, 0]);
    const h = new Float32Array(n);
    simd.swigluForward(h, g, u, n);
    const want = g.map((x, i) => (x / (1 + Math.exp(-x))) * u[i]);
    assertClose(`swiglu n=${n}`, h, want, TOL);
    const dgate = new Float32Array(n), dup = new Float32Array(n);
    simd.swigluBackward(dgate, dup, dh, g, u, n);
    const s = g.map((x) => 1 / (1 + Math.exp(-x)));
    assertClose(`dup n=${n}`, dup, dh.map((d, i) => d * g[i] * s[i]), TOL);
    const wantDg = dh.map((d, i) => d * u[i] * s[i] * (1 + g[i] * (1 - s[i])));
    assertClose(`dgate n=${n}`, dgate, wantDg, TOL);
  }
});

Deno.test("the f32x4 e^x is within 5e-7 relative of Math.exp on [-87, 0] and 0 below -87.3", () => {
  const simd = new SimdKernels();
  // swiglu with u = 1 at g = 0 gives 0; use softmax on one-column rows instead:
  // p = e^(s − max) / Σ, so a row [s, 0] (max 0 when s ≤ 0) gives e^s / (1 + e^s).
  const xs = [-87, -50, -10, -1, -1e-3, 0, -90];
  const mem = simd.floats(xs.length * 4 + 2 * xs.length);
  xs.forEach((x, i) => mem.set([x, 0, 0, 0], i * 4));
  simd.softmaxForward(0, 4, xs.length, 2, 0, xs.length * 4);
  xs.forEach((x, i) => {
    const e = x < -87.3 ? 0 : Math.exp(x);
    const want = e / (1 + e);
    assert.ok(
      Math.abs(mem[i * 4] - want) <= 5e-7 * want,
      `e^${x}: got ${mem[i * 4] / (1 - mem[i * 4])}, want ${e}`,
    );
    assert.equal(mem[i * 4 + 2], 0, "masked column");
  });
});

const native = openNativeBackend();

if (native === null) {
  Deno.test({
    name: "native SIMD ops (skipped: OpenBLAS unavailable)",
    // Under BIOS_REQUIRE_ALL=1 a missing OpenBLAS is a failure, not a skip.
    ignore: Deno.env.get("BIOS_REQUIRE_ALL") !== "1",
    fn() {
      throw new Error(
        "OpenBLAS unavailable (apt-get install libopenblas0-pthread)",
      );
    },
  });
} else {
  const be: Backend = native;
  const both = (rng: Rng, shape: number[], lo = -1, hi = 1) => {
    const x = rng.floats(shape.reduce((a, b) => a * b, 1), lo, hi);
    return [be.fromArray(x, shape), ref.fromArray(x, shape)] as const;
  };
  const same = async (label: string, got: Tensor, want: Tensor) =>
    assertClose(label, await be.read(got), await ref.read(want), TOL);

  Deno.test("native rmsNorm and rmsNormBackward (widths a multiple of 4) match the CPU", async () => {
    const rng = new Rng(7);
    for (const [n, c] of [[1, 4], [100, 256], [33, 688]]) {
      const x = both(rng, [n, c], -3, 3);
      const w = both(rng, [c], 0.5, 1.5);
      const dy = both(rng, [n, c]);
      const g = be.rmsNorm(x[0], w[0], 1e-5);
      const r = ref.rmsNorm(x[1], w[1], 1e-5);
      await same(`rmsNorm y ${n}x${c}`, g.y, r.y);
      await same(`rmsNorm rstd ${n}x${c}`, g.rstd, r.rstd);
      const gb = be.rmsNormBackward(dy[0], x[0], w[0], g.rstd);
      const rb = ref.rmsNormBackward(dy[1], x[1], w[1], r.rstd);
      await same(`rmsNormBackward dx ${n}x${c}`, gb.dx, rb.dx);
      await same(`rmsNormBackward dw ${n}x${c}`, gb.dw, rb.dw);
    }
  });

  Deno.test("native rope (head dims a multiple of 8) matches the CPU, both ways", async () => {
    const rng = new Rng(8);
    for (
      const [rows, seqLen, heads, headDim, offset] of [
        [256, 128, 4, 64, 0],
        [74, 37, 2, 8, 5],
        [3, 1, 3, 16, 40],
      ]
    ) {
      const x = both(rng, [rows, heads * headDim], -2, 2);
      const dims = { seqLen, heads, headDim, offset, theta: 10000 };
      for (const inverse of [false, true]) {
        await same(
          `rope ${rows}x${heads}x${headDim} inverse=${inverse}`,
          be.rope(x[0], dims, inverse),
          ref.rope(x[1], dims, inverse),
        );
      }
    }
  });

  Deno.test("native logSoftmaxGather and its backward match the CPU across row blocks", async () => {
    const rng = new Rng(9);
    for (const [n, v] of [[70, 259], [5, 4], [1, 1]]) {
      const logits = both(rng, [n, v], -8, 8);
      const t = rng.ints(n, v);
      const tb = be.fromInts(t, [n]), tr = ref.fromInts(t, [n]);
      const g = be.logSoftmaxGather(logits[0], tb);
      const r = ref.logSoftmaxGather(logits[1], tr);
      await same(`logprobs ${n}x${v}`, g.logprobs, r.logprobs);
      await same(`lse ${n}x${v}`, g.lse, r.lse);
      const dlp = both(rng, [n]);
      await same(
        `dlogits ${n}x${v}`,
        be.logSoftmaxGatherBackward(dlp[0], logits[0], tb, g.lse),
        ref.logSoftmaxGatherBackward(dlp[1], logits[1], tr, r.lse),
      );
    }
  });

  Deno.test("native SIMD ops repeat bit for bit, also on recycled output arrays", async () => {
    const rng = new Rng(10);
    const x = be.fromArray(rng.floats(1024 * 256, -3, 3), [1024, 256]);
    const w = be.fromArray(rng.floats(256, 0.5, 1.5), [256]);
    const g = be.fromArray(rng.floats(1024 * 688, -6, 6), [1024, 688]);
    const run = async () => {
      const n = be.rmsNorm(x, w, 1e-5);
      const b = be.rmsNormBackward(x, x, w, n.rstd);
      const r = be.rope(x, {
        seqLen: 128,
        heads: 4,
        headDim: 64,
        offset: 0,
        theta: 10000,
      });
      const h = be.swiglu(g, g);
      const s = be.swigluBackward(g, g, h);
      const outs = [n.y, n.rstd, b.dx, b.dw, r, h, s.dgate, s.dup];
      const got = await be.readMany(outs);
      for (const t of outs) be.free(t);
      return got;
    };
    const first = await run();
    const second = await run();
    first.forEach((a, i) => assert.deepEqual(second[i], a, `output ${i}`));
  });
}

Deno.test("SimdKernels.widenBf16 widens exactly, with tails, as widenHalf does", () => {
  const simd = new SimdKernels();
  const bits = Uint16Array.from(
    { length: 70_001 },
    (_, i) => (i * 40503) & 0xffff,
  );
  for (const [from, count] of [[0, 8], [3, 13], [5, 70_000 - 7], [0, 0]]) {
    const want = new Float32Array(count);
    widenHalf({ bits, format: "bf16" }, want, from, count);
    const got = simd.widenBf16(bits, from, count, 16);
    assert.equal(got.length, count);
    assert.deepEqual(
      new Uint32Array(got.slice().buffer),
      new Uint32Array(want.buffer),
    );
  }
});

Deno.test("native: a bf16 linear over few rows, blocked, matches the widened weight's product", async () => {
  const be = await openNativeBackend();
  if (!be) {
    if (Deno.env.get("BIOS_REQUIRE_ALL") === "1") {
      throw new Error("native backend unavailable");
    }
    console.log(
      "native backend unavailable (apt-get install libopenblas0-pthread): skipped",
    );
    return;
  }
  const rng = new Rng(3);
  const [n, inF, outF] = [3, 300, 1500]; // 1500 rows of 300: several blocks
  const w = narrowToHalf(rng.floats(outF * inF), "bf16");
  const x = be.fromArray(rng.floats(n * inF), [n, inF]);
  const got = await be.read(be.linear(x, be.fromHalf(w, [outF, inF])).y);
  const want = await be.read(
    be.linear(x, be.fromArray(halfToF32(w), [outF, inF])).y,
  );
  assertClose("bf16 blocked linear", got, want, { abs: 1e-5, rel: 1e-5 });
});
