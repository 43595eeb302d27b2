/**
 * One conformance suite for every backend: each op of a backend under test is
 * compared with {@linkcode CpuBackend} (the oracle) on seeded random inputs, at
 * shapes that are not multiples of any tile (37×53, 29, …), at one row, and at
 * vocabulary width (V = 32000) for the loss and the sampler.
 *
 * @example From a backend's test file
 * ```ts ignore
 * import { backendConformance } from "../_conformance.ts";
 * import { openWebGpuBackend } from "./backend.ts";
 * backendConformance("webgpu", () => openWebGpuBackend(), { abs: 1e-4, rel: 1e-3 });
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import type {
  AttentionDims,
  Backend,
  SampleOptions,
  Tensor,
} from "./backend.ts";
import { CpuBackend } from "./cpu/backend.ts";
import { Rng } from "./cpu/_random.ts";

/** Allowed error: |got − want| ≤ abs + rel · |want|, element by element. */
export interface Tolerance {
  /** Absolute part. */
  abs: number;
  /** Relative part. */
  rel: number;
}

/** Tolerances of {@linkcode backendConformance}: a default, and overrides by op name. */
export interface ConformanceTolerance extends Tolerance {
  /** Per-op overrides, keyed by the Backend method name (e.g. "attentionBackward"). */
  ops?: Partial<Record<string, Tolerance>>;
  /** Also run the V = 32000 cases (slow on emulated GPUs). @default {true} */
  vocabWidth?: boolean;
}

/** The error a conformance comparison throws, with the max abs/rel errors. */
export class ConformanceError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ConformanceError";
  }
}

/**
 * Throws {@linkcode ConformanceError} unless every element of `got` is within
 * `tol` of `want`; the message gives the max abs and rel errors and the worst
 * element.
 */
export function assertClose(
  label: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: Tolerance,
): void {
  if (got.length !== want.length) {
    throw new ConformanceError(
      `${label}: length ${got.length}, want ${want.length}`,
    );
  }
  let maxAbs = 0, maxRel = 0, worst = -1, worstExcess = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const bad = !(err <= tol.abs + tol.rel * Math.abs(want[i])) &&
      got[i] !== want[i];
    if (err > maxAbs || Number.isNaN(err)) {
      maxAbs = Number.isNaN(err) ? NaN : err;
    }
    const rel = err / Math.max(Math.abs(want[i]), 1e-30);
    if (rel > maxRel) maxRel = rel;
    if (bad) {
      const excess = Number.isNaN(err)
        ? Infinity
        : err - tol.abs - tol.rel * Math.abs(want[i]);
      if (worst < 0 || excess > worstExcess) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  if (worst >= 0) {
    throw new ConformanceError(
      `${label}: max abs error ${maxAbs.toExponential(3)}, max rel error ${
        maxRel.toExponential(3)
      } ` +
        `(tolerance abs ${tol.abs}, rel ${tol.rel}); worst at [${worst}]: got ${
          got[worst]
        }, want ${want[worst]}`,
    );
  }
}

/**
 * Registers `Deno.test`s named `<name> conformance: <op>` comparing every op
 * of the backend from `make` (called once, lazily) with the CPU oracle.
 */
export function backendConformance(
  name: string,
  make: () => Promise<Backend> | Backend,
  tol: ConformanceTolerance,
): void {
  let made: Promise<Backend> | null = null;
  const ref = new CpuBackend();
  const backend = (): Promise<
    Backend
  > => (made ??= Promise.resolve().then(make));
  const tolOf = (op: string): Tolerance => tol.ops?.[op] ?? tol;

  const check = (
    op: string,
    fn: (be: Backend, t: Harness) => Promise<void>,
  ): void => {
    Deno.test({
      name: `${name} conformance: ${op}`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const be = await backend();
        await fn(be, new Harness(be, ref, tolOf(op)));
        await be.sync();
      },
    });
  };

  check("memory", async (be, h) => {
    const x = h.rng.floats(37 * 53);
    const t = be.fromArray(x, [37, 53]);
    assertClose("read(fromArray)", await be.read(t), x, { abs: 0, rel: 0 });
    const ids = h.rng.ints(29, 1000);
    if (String(await be.readInts(be.fromInts(ids, [29]))) !== String(ids)) {
      throw new ConformanceError("readInts(fromInts) differs");
    }
    assertClose(
      "zeros",
      await be.read(be.zeros([3, 7])),
      new Float32Array(21),
      { abs: 0, rel: 0 },
    );
    be.free(t);
  });

  check("axpy", async (_be, h) => {
    const [o, x] = [h.rng.floats(37 * 53), h.rng.floats(37 * 53)];
    const [ob, or] = h.both(o, [37, 53]);
    const [xb, xr] = h.both(x, [37, 53]);
    h.be.axpy(ob, xb, -0.75);
    h.ref.axpy(or, xr, -0.75);
    await h.same("axpy", ob, or);
  });

  check("add", async (_be, h) => {
    const a = h.both(h.rng.floats(1 * 53), [1, 53]);
    const b = h.both(h.rng.floats(1 * 53), [1, 53]);
    await h.same("add", h.be.add(a[0], b[0]), h.ref.add(a[1], b[1]));
  });

  check("readMany", async (_be, h) => {
    const a = h.both(h.rng.floats(37 * 53), [37, 53]);
    const b = h.both(h.rng.floats(5), [5]);
    const [ga, gb] = await h.be.readMany([a[0], b[0]]);
    assertClose("readMany", ga, await h.ref.read(a[1]), h.tol);
    assertClose("readMany", gb, await h.ref.read(b[1]), h.tol);
  });

  check("readMixed", async (_be, h) => {
    const ids = Int32Array.from({ length: 41 }, (_, i) => (i * 7919) % 259 - 3);
    const a = h.both(h.rng.floats(37 * 53), [37, 53]);
    const b = h.both(h.rng.floats(5), [5]);
    const ti = h.be.fromInts(ids, [41]);
    const got = await h.be.readMixed([ti, ti], [a[0], b[0]]);
    assert.deepEqual(got.ints, [ids, ids]);
    assert.equal(got.floats.length, 2);
    assertClose("readMixed", got.floats[0], await h.ref.read(a[1]), h.tol);
    assertClose("readMixed", got.floats[1], await h.ref.read(b[1]), h.tol);
    h.be.free(ti);
  });

  check("mul", async (_be, h) => {
    const a = h.both(h.rng.floats(37 * 53), [37, 53]);
    const b = h.both(h.rng.floats(37 * 53), [37, 53]);
    await h.same("mul", h.be.mul(a[0], b[0]), h.ref.mul(a[1], b[1]));
  });

  check("sumOfSquares", async (_be, h) => {
    const a = h.both(h.rng.floats(37 * 53), [37, 53]);
    const b = h.both(h.rng.floats(29), [29]);
    const got = await h.be.sumOfSquares([a[0], b[0]]);
    const want = await h.ref.sumOfSquares([a[1], b[1]]);
    assertClose("sumOfSquares", [got], [want], h.tol);
    const t = h.be.sumOfSquaresTensor([a[0], b[0]]);
    assert.deepEqual(t.shape, [1]);
    const [onDevice] = await h.be.readMany([t]);
    h.be.free(t);
    assert.equal(
      onDevice[0],
      Math.fround(got),
      "the tensor holds the same sum",
    );
  });

  check("gemm", async (_be, h) => {
    for (
      const [m, n, k] of [[37, 53, 29], [1, 53, 29], [37, 1, 61], [64, 48, 80]]
    ) {
      for (
        const [transA, transB] of [
          [false, false],
          [true, false],
          [false, true],
          [true, true],
        ]
      ) {
        const a = h.both(h.rng.floats(m * k), transA ? [k, m] : [m, k]);
        const b = h.both(h.rng.floats(k * n), transB ? [n, k] : [k, n]);
        const label = `gemm ${m}x${n}x${k} transA=${transA} transB=${transB}`;
        await h.same(
          label,
          h.be.gemm(a[0], b[0], { transA, transB }),
          h.ref.gemm(a[1], b[1], { transA, transB }),
        );
        const out = h.both(h.rng.floats(m * n), [m, n]);
        const opts = { transA, transB, alpha: 0.5, beta: -1.5 };
        h.be.gemm(a[0], b[0], { ...opts, out: out[0] });
        h.ref.gemm(a[1], b[1], { ...opts, out: out[1] });
        await h.same(`${label} alpha/beta/out`, out[0], out[1]);
      }
    }
  });

  check("linear", async (_be, h) => {
    for (const n of [37, 1]) {
      const { x, w, lora } = h.linearInputs(n, 53, 41, 5);
      await h.same(
        `linear n=${n}`,
        h.be.linear(x[0], w[0]).y,
        h.ref.linear(x[1], w[1]).y,
      );
      const g = h.be.linear(x[0], w[0], lora[0]);
      const r = h.ref.linear(x[1], w[1], lora[1]);
      await h.same(`linear+lora n=${n} y`, g.y, r.y);
      await h.same(`linear+lora n=${n} xa`, g.xa!, r.xa!);
    }
  });

  check("linearBackward", async (_be, h) => {
    for (const n of [37, 1]) {
      const { x, w, lora } = h.linearInputs(n, 53, 41, 5);
      const dy = h.both(h.rng.floats(n * 41), [n, 41]);
      await h.same(
        `linearBackward n=${n} dx`,
        h.be.linearBackward(dy[0], x[0], w[0]).dx,
        h.ref.linearBackward(dy[1], x[1], w[1]).dx,
      );
      const xa = [
        h.be.linear(x[0], w[0], lora[0]).xa,
        h.ref.linear(x[1], w[1], lora[1]).xa,
      ];
      for (const keep of [true, false]) {
        const g = h.be.linearBackward(
          dy[0],
          x[0],
          w[0],
          lora[0],
          keep ? xa[0] : undefined,
        );
        const r = h.ref.linearBackward(
          dy[1],
          x[1],
          w[1],
          lora[1],
          keep ? xa[1] : undefined,
        );
        const label = `linearBackward+lora n=${n} xa ${
          keep ? "kept" : "recomputed"
        }`;
        await h.same(`${label} dx`, g.dx, r.dx);
        await h.same(`${label} da`, g.da!, r.da!);
        await h.same(`${label} db`, g.db!, r.db!);
      }
    }
  });

  check("rmsNorm", async (_be, h) => {
    for (const n of [37, 1]) {
      const x = h.both(h.rng.floats(n * 53, -3, 3), [n, 53]);
      const w = h.both(h.rng.floats(53, 0.5, 1.5), [53]);
      const g = h.be.rmsNorm(x[0], w[0], 1e-5);
      const r = h.ref.rmsNorm(x[1], w[1], 1e-5);
      await h.same(`rmsNorm n=${n} y`, g.y, r.y);
      await h.same(`rmsNorm n=${n} rstd`, g.rstd, r.rstd);
    }
  });

  check("rmsNormBackward", async (_be, h) => {
    for (const n of [37, 1]) {
      const x = h.both(h.rng.floats(n * 53, -3, 3), [n, 53]);
      const w = h.both(h.rng.floats(53, 0.5, 1.5), [53]);
      const dy = h.both(h.rng.floats(n * 53), [n, 53]);
      const rstd = h.ref.rmsNorm(x[1], w[1], 1e-5).rstd;
      const rstdB = h.be.fromArray(await h.ref.read(rstd), [n]);
      const g = h.be.rmsNormBackward(dy[0], x[0], w[0], rstdB);
      const r = h.ref.rmsNormBackward(dy[1], x[1], w[1], rstd);
      await h.same(`rmsNormBackward n=${n} dx`, g.dx, r.dx);
      await h.same(`rmsNormBackward n=${n} dw`, g.dw!, r.dw!);
      // A frozen norm: the same dx, no dw.
      const f = h.be.rmsNormBackward(dy[0], x[0], w[0], rstdB, {
        weightGrad: false,
      });
      assert.equal(f.dw, null);
      await h.same(`rmsNormBackward n=${n} dx, frozen`, f.dx, r.dx);
    }
  });

  check("rmsNorm per group (Qwen3's per-head q/k norms)", async (_be, h) => {
    // x [n, heads·D] normalized per D-wide head with one weight of D; the
    // widths keep the texture-fed kernels in play where they fit.
    for (const [n, heads, d] of [[12, 4, 16], [5, 3, 8], [37, 2, 6]]) {
      const c = heads * d;
      const x = h.both(h.rng.floats(n * c, -3, 3), [n, c]);
      const w = h.both(h.rng.floats(d, 0.5, 1.5), [d]);
      const g = h.be.rmsNorm(x[0], w[0], 1e-6);
      const r = h.ref.rmsNorm(x[1], w[1], 1e-6);
      assert.deepEqual(g.rstd.shape, [n * heads]);
      await h.same(`grouped rmsNorm ${n}x${heads}x${d} y`, g.y, r.y);
      await h.same(`grouped rmsNorm ${n}x${heads}x${d} rstd`, g.rstd, r.rstd);
      const dy = h.both(h.rng.floats(n * c), [n, c]);
      const rstdB = h.be.fromArray(await h.ref.read(r.rstd), [n * heads]);
      const gb = h.be.rmsNormBackward(dy[0], x[0], w[0], rstdB);
      const rb = h.ref.rmsNormBackward(dy[1], x[1], w[1], r.rstd);
      await h.same(
        `grouped rmsNormBackward ${n}x${heads}x${d} dx`,
        gb.dx,
        rb.dx,
      );
      await h.same(
        `grouped rmsNormBackward ${n}x${heads}x${d} dw`,
        gb.dw!,
        rb.dw!,
      );
    }
  });

  check("rope", async (_be, h) => {
    const llama3 = {
      type: "llama3" as const,
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 64,
    };
    const cases: [number, number, number, number, typeof llama3 | undefined][] =
      [
        [74, 37, 0, 10000, undefined],
        [3, 1, 1234, 500000, undefined],
        [37, 37, 5, 10000, undefined],
        // Llama 3's scaling: the same shapes then see other angles.
        [37, 37, 5, 10000, llama3],
        [3, 1, 300, 10000, llama3],
      ];
    for (const [rows, seqLen, offset, theta, scaling] of cases) {
      const dims = { seqLen, heads: 3, headDim: 6, offset, theta, scaling };
      const x = h.both(h.rng.floats(rows * 18), [rows, 18]);
      for (const inverse of [false, true]) {
        await h.same(
          `rope rows=${rows} seqLen=${seqLen} offset=${offset} scaling=${!!scaling} inverse=${inverse}`,
          h.be.rope(x[0], dims, inverse),
          h.ref.rope(x[1], dims, inverse),
        );
      }
    }
  });

  const attnCases: AttentionDims[] = [
    { batch: 2, tq: 5, tk: 7, kvRows: 9, heads: 6, kvHeads: 2, headDim: 10 },
    { batch: 1, tq: 13, tk: 13, heads: 3, kvHeads: 3, headDim: 7 },
    { batch: 3, tq: 1, tk: 11, kvRows: 16, heads: 4, kvHeads: 1, headDim: 8 },
    // rows of 64-float multiples: texture-fed on CPU adapters
    { batch: 2, tq: 9, tk: 12, kvRows: 14, heads: 8, kvHeads: 2, headDim: 32 },
    // queries in several chunks: real GPUs sum dk, dv per chunk
    { batch: 2, tq: 70, tk: 75, kvRows: 80, heads: 4, kvHeads: 2, headDim: 8 },
  ];

  check("attention", async (_be, h) => {
    for (const dims of attnCases) {
      const { q, k, v } = h.attentionInputs(dims);
      const g = h.be.attention(q[0], k[0], v[0], dims);
      const r = h.ref.attention(q[1], k[1], v[1], dims);
      await h.same(`attention ${JSON.stringify(dims)} out`, g.out, r.out);
      await h.same(`attention ${JSON.stringify(dims)} lse`, g.lse, r.lse);
    }
  });

  check("attentionBackward", async (_be, h) => {
    for (const dims of attnCases) {
      const { q, k, v } = h.attentionInputs(dims);
      const dout = h.both(h.rng.floats(q[1].size), q[1].shape);
      const r0 = h.ref.attention(q[1], k[1], v[1], dims);
      const out = h.be.fromArray(await h.ref.read(r0.out), r0.out.shape);
      const lse = h.be.fromArray(await h.ref.read(r0.lse), r0.lse.shape);
      const g = h.be.attentionBackward(
        dout[0],
        q[0],
        k[0],
        v[0],
        out,
        lse,
        dims,
      );
      const r = h.ref.attentionBackward(
        dout[1],
        q[1],
        k[1],
        v[1],
        r0.out,
        r0.lse,
        dims,
      );
      const label = `attentionBackward ${JSON.stringify(dims)}`;
      await h.same(`${label} dq`, g.dq, r.dq);
      await h.same(`${label} dk`, g.dk, r.dk);
      await h.same(`${label} dv`, g.dv, r.dv);
    }
  });

  check("writeRows", async (_be, h) => {
    const cache = h.both(h.rng.floats(3 * 11 * 53), [3 * 11, 53]);
    const src = h.both(h.rng.floats(3 * 2 * 53), [3 * 2, 53]);
    h.be.writeRows(cache[0], src[0], { batch: 3, rows: 11, start: 7 });
    h.ref.writeRows(cache[1], src[1], { batch: 3, rows: 11, start: 7 });
    await h.same("writeRows", cache[0], cache[1]);
  });

  check("swiglu", async (_be, h) => {
    for (const n of [37, 1]) {
      const gate = h.both(h.rng.floats(n * 53, -5, 5), [n, 53]);
      const up = h.both(h.rng.floats(n * 53), [n, 53]);
      await h.same(
        `swiglu n=${n}`,
        h.be.swiglu(gate[0], up[0]),
        h.ref.swiglu(gate[1], up[1]),
      );
    }
  });

  check("swigluBackward", async (_be, h) => {
    for (const n of [37, 1]) {
      const gate = h.both(h.rng.floats(n * 53, -5, 5), [n, 53]);
      const up = h.both(h.rng.floats(n * 53), [n, 53]);
      const dh = h.both(h.rng.floats(n * 53), [n, 53]);
      const g = h.be.swigluBackward(dh[0], gate[0], up[0]);
      const r = h.ref.swigluBackward(dh[1], gate[1], up[1]);
      await h.same(`swigluBackward n=${n} dgate`, g.dgate, r.dgate);
      await h.same(`swigluBackward n=${n} dup`, g.dup, r.dup);
    }
  });

  check("embedding", async (_be, h) => {
    const table = h.both(h.rng.floats(97 * 53), [97, 53]);
    for (const n of [37, 1]) {
      const ids = h.ints(h.rng.ints(n, 97), [n]);
      await h.same(
        `embedding n=${n}`,
        h.be.embedding(table[0], ids[0]),
        h.ref.embedding(table[1], ids[1]),
      );
    }
  });

  check("embeddingBackward", async (_be, h) => {
    for (const n of [37, 1]) {
      const ids = h.ints(h.rng.ints(n, 13), [n]); // repeated ids: the scatter-add must sum them
      const dy = h.both(h.rng.floats(n * 53), [n, 53]);
      await h.same(
        `embeddingBackward n=${n}`,
        h.be.embeddingBackward(dy[0], ids[0], 97),
        h.ref.embeddingBackward(dy[1], ids[1], 97),
      );
    }
  });

  const lossShapes = tol.vocabWidth === false
    ? [[37, 53], [1, 53]]
    : [[37, 53], [1, 53], [3, 32000]];

  check("logSoftmaxGather", async (_be, h) => {
    for (const [n, v] of lossShapes) {
      const logits = h.both(h.rng.floats(n * v, -8, 8), [n, v]);
      const targets = h.ints(h.rng.ints(n, v), [n]);
      const g = h.be.logSoftmaxGather(logits[0], targets[0]);
      const r = h.ref.logSoftmaxGather(logits[1], targets[1]);
      await h.same(
        `logSoftmaxGather ${n}x${v} logprobs`,
        g.logprobs,
        r.logprobs,
      );
      await h.same(`logSoftmaxGather ${n}x${v} lse`, g.lse, r.lse);
    }
  });

  check("logSoftmaxGatherBackward", async (_be, h) => {
    for (const [n, v] of lossShapes) {
      const logits = h.both(h.rng.floats(n * v, -8, 8), [n, v]);
      const targets = h.ints(h.rng.ints(n, v), [n]);
      const dlp = h.both(h.rng.floats(n), [n]);
      const lse = h.ref.logSoftmaxGather(logits[1], targets[1]).lse;
      const lseB = h.be.fromArray(await h.ref.read(lse), [n]);
      await h.same(
        `logSoftmaxGatherBackward ${n}x${v}`,
        h.be.logSoftmaxGatherBackward(dlp[0], logits[0], targets[0], lseB),
        h.ref.logSoftmaxGatherBackward(dlp[1], logits[1], targets[1], lse),
      );
    }
  });

  check("adamw", async (_be, h) => {
    const shapes = [[37, 53], [29], [1, 5]];
    const state = shapes.map((s) => {
      const n = s.reduce((a, b) => a * b, 1);
      return {
        p: h.both(h.rng.floats(n), s),
        m: h.both(new Float32Array(n), s),
        v: h.both(new Float32Array(n), s),
      };
    });
    for (let step = 1; step <= 3; step++) {
      const grads = shapes.map((s) =>
        h.both(h.rng.floats(s.reduce((a, b) => a * b, 1)), s)
      );
      const hyper = {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weightDecay: 0.1,
        step,
        gradScale: 0.7,
      };
      for (const side of [0, 1] as const) {
        (side === 0 ? h.be : h.ref).adamw(
          state.map((x) => x.p[side]),
          grads.map((g) => g[side]),
          state.map((x) => x.m[side]),
          state.map((x) => x.v[side]),
          hyper,
        );
      }
    }
    for (const [i, x] of state.entries()) {
      await h.same(`adamw params[${i}]`, x.p[0], x.p[1]);
      await h.same(`adamw m[${i}]`, x.m[0], x.m[1]);
      await h.same(`adamw v[${i}]`, x.v[0], x.v[1]);
    }
  });

  check("markTokens", async (_be, h) => {
    const widths = tol.vocabWidth === false ? [53] : [53, 32000];
    for (const v of widths) {
      const b = 5, n = 9;
      const seen = h.both(new Float32Array(b * v), [b, v]);
      // a prompt of n ids per row, with repeats, then one drawn id per row
      const prompt = Int32Array.from(
        { length: b * n },
        (_, i) => i % 4 === 3 ? v - 1 : (i * 7919) % v,
      );
      const steps = [prompt, Int32Array.from({ length: b }, (_, i) => i * 3)];
      for (const ids of steps) {
        const t = h.ints(ids, [ids.length]);
        h.be.markTokens(seen[0], t[0]);
        h.ref.markTokens(seen[1], t[1]);
      }
      await h.same(`markTokens ${b}x${v}`, seen[0], seen[1]);
    }
  });

  check("repetitionPenalty", async (_be, h) => {
    const widths = tol.vocabWidth === false ? [53] : [53, 32000];
    for (const v of widths) {
      const b = 5;
      const data = h.rng.floats(b * v, -6, 6);
      for (let i = 0; i < data.length; i += 11) data[i] = 0;
      const mask = h.rng.floats(b * v, 0, 1).map((x) => x < 0.3 ? 1 : 0);
      const seen = h.both(mask, [b, v]);
      for (const penalty of [1.3, 0.7]) {
        const logits = h.both(data, [b, v]);
        h.be.repetitionPenalty(logits[0], seen[0], penalty);
        h.ref.repetitionPenalty(logits[1], seen[1], penalty);
        await h.same(
          `repetitionPenalty ${b}x${v} ${penalty}`,
          logits[0],
          logits[1],
        );
      }
    }
  });

  check("sample", async (_be, h) => {
    const widths = tol.vocabWidth === false ? [53] : [53, 32000];
    const optsList: SampleOptions[] = [
      { temperature: 0, topK: -1, topP: 1 },
      { temperature: 1, topK: -1, topP: 1 },
      { temperature: 0.7, topK: 50, topP: 0.9 },
      { temperature: 1.3, topK: 1, topP: 1 },
      { temperature: 0.9, topK: -1, topP: 0.5 },
      { temperature: 1, topK: -1, topP: 1, minP: 0.05 },
      { temperature: 0.7, topK: 50, topP: 0.9, minP: 0.1 },
      { temperature: 1.5, topK: -1, topP: 1, minP: 1 },
    ];
    for (const v of widths) {
      const b = 5;
      const logits = h.both(h.rng.floats(b * v, -6, 6), [b, v]);
      const us = h.both(new Float32Array(b).map(() => h.rng.next()), [b]);
      for (const opts of optsList) {
        const g = h.be.sample(logits[0], us[0], opts);
        const r = h.ref.sample(logits[1], us[1], opts);
        const label = `sample ${b}x${v} ${JSON.stringify(opts)}`;
        const gt = await h.be.readInts(g.tokens);
        const rt = await h.ref.readInts(r.tokens);
        if (String(gt) !== String(rt)) {
          throw new ConformanceError(
            `${label} tokens: got [${gt}], want [${rt}]`,
          );
        }
        await h.same(`${label} logprobs`, g.logprobs, r.logprobs);
      }
    }
  });
}

/** Paired inputs on the backend under test and the oracle. */
class Harness {
  readonly rng: Rng;
  constructor(
    readonly be: Backend,
    readonly ref: CpuBackend,
    readonly tol: Tolerance,
  ) {
    this.rng = new Rng(0x5eed);
  }

  /** The same f32 data on both backends: [under test, oracle]. */
  both(data: Float32Array, shape: readonly number[]): [Tensor, Tensor] {
    return [this.be.fromArray(data, shape), this.ref.fromArray(data, shape)];
  }

  /** The same i32 data on both backends. */
  ints(data: Int32Array, shape: readonly number[]): [Tensor, Tensor] {
    return [this.be.fromInts(data, shape), this.ref.fromInts(data, shape)];
  }

  /** Reads both and compares within the op's tolerance (shapes must agree too). */
  async same(label: string, got: Tensor, want: Tensor): Promise<void> {
    if (String(got.shape) !== String(want.shape)) {
      throw new ConformanceError(
        `${label}: shape [${got.shape}], want [${want.shape}]`,
      );
    }
    assertClose(
      label,
      await this.be.read(got),
      await this.ref.read(want),
      this.tol,
    );
  }

  linearInputs(n: number, inF: number, outF: number, r: number) {
    const x = this.both(this.rng.floats(n * inF), [n, inF]);
    const w = this.both(this.rng.floats(outF * inF, -0.2, 0.2), [outF, inF]);
    const a = this.both(this.rng.floats(r * inF, -0.2, 0.2), [r, inF]);
    const b = this.both(this.rng.floats(outF * r, -0.2, 0.2), [outF, r]);
    const lora = [{ a: a[0], b: b[0], scale: 2 }, {
      a: a[1],
      b: b[1],
      scale: 2,
    }] as const;
    return { x, w, lora };
  }

  attentionInputs(dims: AttentionDims) {
    const s = dims.kvRows ?? dims.tk;
    const qs = [dims.batch * dims.tq, dims.heads * dims.headDim];
    const ks = [dims.batch * s, dims.kvHeads * dims.headDim];
    return {
      q: this.both(this.rng.floats(qs[0] * qs[1], -2, 2), qs),
      k: this.both(this.rng.floats(ks[0] * ks[1], -2, 2), ks),
      v: this.both(this.rng.floats(ks[0] * ks[1]), ks),
    };
  }
}
