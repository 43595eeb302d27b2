import assert from "node:assert/strict";
import type { Backend, Tensor } from "../backend.ts";
import { assertClose, type Tolerance } from "../_conformance.ts";
import { CpuBackend } from "../cpu/backend.ts";
import { Rng } from "../cpu/_random.ts";
import {
  haveAdapter,
  testBackend,
  testBackendWithLimit,
} from "./_open_for_test.ts";
import { openWebGpuBackend, type WebGpuBackend } from "./backend.ts";
import { BindingLimitError } from "./errors.ts";
import { blockRanges, planLayout } from "./layout.ts";
import type { GpuTensor } from "./tensor.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const TOL: Tolerance = { abs: 1e-4, rel: 1e-3 };
const EXACT: Tolerance = { abs: 0, rel: 0 };
const KIB64 = 64 * 1024;
const cpu = new CpuBackend();

Deno.test("layout cuts the longer side into blocks of at most the limit", () => {
  const limit = KIB64 / 4;
  // a table [V, C]: whole rows, 256 per block
  assert.deepEqual(planLayout([32000, 64], limit), {
    rows: 32000,
    cols: 64,
    rowsPer: 256,
    colsPer: 64,
  });
  // logits [N, V]: whole columns, a multiple of 64 per block
  assert.deepEqual(planLayout([24, 32000], limit), {
    rows: 24,
    cols: 32000,
    rowsPer: 24,
    colsPer: 640,
  });
  assert.equal(planLayout([40000], limit).rowsPer, 16384);
  assert.deepEqual(planLayout([128, 128], limit), {
    rows: 128,
    cols: 128,
    rowsPer: 128,
    colsPer: 128,
  });
  // every element in exactly one block, every block within the limit
  for (const shape of [[32000, 64], [24, 32000], [40000], [7, 5, 3000]]) {
    const l = planLayout(shape, limit);
    const seen = new Uint8Array(l.rows * l.cols);
    for (const b of blockRanges(l)) {
      assert.ok((b.r1 - b.r0) * (b.c1 - b.c0) <= limit);
      for (let r = b.r0; r < b.r1; r++) {
        for (let c = b.c0; c < b.c1; c++) seen[r * l.cols + c]++;
      }
    }
    assert.ok(seen.every((x) => x === 1), `shape ${shape}`);
  }
});

function blocksOf(t: Tensor): number {
  return (t as GpuTensor).blocks().length;
}

/** Reads named tensors with one readMany and frees them. */
async function readAll(
  b: Backend,
  ts: Record<string, Tensor>,
): Promise<Record<string, Float32Array>> {
  const keys = Object.keys(ts);
  const data = await b.readMany(keys.map((k) => ts[k]));
  for (const k of keys) b.free(ts[k]);
  return Object.fromEntries(keys.map((k, i) => [k, data[i]]));
}

// The vocabulary-width case: V 32000, C 64. At 64 KiB the table [V,C] splits
// into 125 row blocks and the logits [N,V] into 50 column blocks.
const V = 32000, C = 64, N = 24, R = 8;
const rng = new Rng(7);
const table = rng.floats(V * C, -0.5, 0.5);
const loraA = rng.floats(R * C, -0.2, 0.2);
const loraB = rng.floats(V * R, -0.2, 0.2);
const x = rng.floats(N * C);
const ids = rng.ints(N, V);
const targets = rng.ints(N, V);
const dlp = rng.floats(N);
const outInit = rng.floats(N * V);

/** `n` ids spread over the whole vocabulary. */
function spreadIds(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (i * 7919) % V);
}

/** Every op of an LM head that takes split tensors, on one backend. */
function head(b: Backend): Record<string, Tensor> {
  const w = b.fromArray(table, [V, C]);
  const xt = b.fromArray(x, [N, C]);
  const it = b.fromInts(ids, [N]);
  const tt = b.fromInts(targets, [N]);
  const it300 = b.fromInts(spreadIds(300), [300]);
  const lora = {
    a: b.fromArray(loraA, [R, C]),
    b: b.fromArray(loraB, [V, R]),
    scale: 0.5,
  };
  const emb = b.embedding(w, it);
  const embBig = b.embedding(w, it300); // the result splits too
  const dTable = b.embeddingBackward(xt, it, V);
  const { y, xa } = b.linear(xt, w, lora);
  const ls = b.logSoftmaxGather(y, tt);
  const dlpIn = b.fromArray(dlp, [N]);
  const dl = b.logSoftmaxGatherBackward(dlpIn, y, tt, ls.lse);
  const g = b.linearBackward(dl, xt, w, lora, xa);
  const gT = b.gemm(w, xt, { transB: true }); // [V, N]: rows split
  const gK = b.gemm(dl, w); // the inner dimension V split
  const gA = b.gemm(dl, xt, { transA: true, alpha: 0.25 }); // [V, C]
  const out = b.fromArray(outInit, [N, V]);
  b.gemm(xt, w, { transB: true, alpha: 0.5, beta: 2, out });
  for (const t of [w, xt, it, tt, it300, lora.a, lora.b, dlpIn, xa!]) {
    b.free(t);
  }
  return {
    emb,
    embBig,
    dTable,
    y,
    logprobs: ls.logprobs,
    lse: ls.lse,
    dl,
    dx: g.dx,
    da: g.da!,
    db: g.db!,
    gT,
    gK,
    gA,
    out,
  };
}

const sampleOpts = [
  { temperature: 0, topK: -1, topP: 1 },
  { temperature: 1, topK: -1, topP: 1 },
  { temperature: 0.7, topK: 50, topP: 0.9 },
  { temperature: 0.9, topK: -1, topP: 0.5 },
];

/** Sampling over split logits [b, v] against the cpu, for each of `sampleOpts`. */
async function sampleCase(
  split: WebGpuBackend,
  b: number,
  v: number,
): Promise<void> {
  const r = new Rng(v);
  const logits = r.floats(b * v, -6, 6);
  const us = new Float32Array(b).map(() => r.next());
  const lt = split.fromArray(logits, [b, v]), ut = split.fromArray(us, [b]);
  assert.ok(blocksOf(lt) > 1);
  for (const o of sampleOpts) {
    const g = split.sample(lt, ut, o);
    const w = cpu.sample(
      cpu.fromArray(logits, [b, v]),
      cpu.fromArray(us, [b]),
      o,
    );
    const label = `sample ${b}x${v} ${JSON.stringify(o)}`;
    assert.deepEqual(
      await split.readInts(g.tokens),
      await cpu.readInts(w.tokens),
      label,
    );
    assertClose(
      label,
      await split.read(g.logprobs),
      await cpu.read(w.logprobs),
      TOL,
    );
  }
  split.free(lt);
  split.free(ut);
}

const be = await testBackend();
const be64 = await testBackendWithLimit(KIB64);
const be160 = await testBackendWithLimit(160 * 1024);

if (haveAdapter(be) && be64 && be160) {
  Deno.test({
    name: "split: maxBindingBytes is validated and caps every buffer",
    ...opts,
    fn: async () => {
      await assert.rejects(
        () => openWebGpuBackend({ maxBindingBytes: 100 }),
        /maxBindingBytes must be an integer ≥ 1024/,
      );
      assert.equal(be64.maxBindingBytes, KIB64);
      assert.ok(be.maxBindingBytes >= 128 * 1024 * 1024 - 4);
      const t = be64.zeros([300, 100]) as GpuTensor;
      assert.ok(t.split);
      for (const b of t.blocks()) assert.ok(b.bytes <= KIB64);
      be64.free(t);
      await assert.rejects(() => be64.read(t), /freed/);
    },
  });

  Deno.test({
    name:
      "split: fromArray, fromInts, zeros, read, readMany round-trip exactly",
    ...opts,
    fn: async () => {
      const r = new Rng(1);
      const shapes = [[300, 100], [20, 3000], [40000], [4, 5, 2000], [7, 9]];
      const datas = shapes.map((s) => r.floats(s.reduce((a, b) => a * b)));
      const ts = shapes.map((s, i) => be64.fromArray(datas[i], s));
      assert.deepEqual(ts.map(blocksOf), [3, 4, 3, 3, 1]);
      // more bytes than one staging buffer holds: several, one wait
      const got = await be64.readMany(ts);
      got.forEach((g, i) =>
        assertClose(`readMany ${shapes[i]}`, g, datas[i], EXACT)
      );
      assertClose("read", await be64.read(ts[1]), datas[1], EXACT);
      const big = r.ints(70000, 1 << 30);
      const ti = be64.fromInts(big, [70000]);
      assert.equal(blocksOf(ti), 5);
      assert.deepEqual(await be64.readInts(ti), big);
      const z = be64.fromArray(datas[1], [20, 3000]);
      be64.free(z);
      const z2 = be64.zeros([20, 3000]); // reuses the dirty buffers
      assert.ok((await be64.read(z2)).every((v) => v === 0));
      for (const t of [...ts, ti, z2]) be64.free(t);
    },
  });

  Deno.test({
    name:
      "split (64 KiB): embedding, linear, loss, backward and gemm at V = 32000 match the cpu",
    ...opts,
    fn: async () => {
      const ts = head(be64);
      for (const k of ["y", "db", "dTable", "gT", "gA", "out", "embBig"]) {
        assert.ok(blocksOf(ts[k]) > 1, `${k} is split`);
      }
      const got = await readAll(be64, ts);
      const want = await readAll(cpu, head(cpu));
      for (const k of Object.keys(want)) {
        const exact = k === "emb" || k === "embBig";
        assertClose(k, got[k], want[k], exact ? EXACT : TOL);
      }
      // the gathers and the scatter-add cut no sum: the unsplit backend's bits
      const w = be.fromArray(table, [V, C]);
      const i24 = be.fromInts(ids, [N]),
        i300 = be.fromInts(spreadIds(300), [300]);
      const xt = be.fromArray(x, [N, C]);
      const whole = await readAll(be, {
        emb: be.embedding(w, i24),
        embBig: be.embedding(w, i300),
        dTable: be.embeddingBackward(xt, i24, V),
      });
      for (const t of [w, i24, i300, xt]) be.free(t);
      for (const k of ["emb", "embBig", "dTable"]) {
        assert.deepEqual(got[k], whole[k], `${k} bit-identical to unsplit`);
      }
    },
  });

  Deno.test({
    name:
      "split: log-softmax of split logits matches unsplit; its backward is bit-identical",
    ...opts,
    fn: async () => {
      const logits = new Rng(3).floats(N * V, -4, 4);
      const forward = (b: Backend) => {
        const l = b.fromArray(logits, [N, V]);
        const t = b.fromInts(targets, [N]);
        assert.equal(blocksOf(l) > 1, b === be64);
        const { logprobs, lse } = b.logSoftmaxGather(l, t);
        b.free(t);
        return readAll(b, { l, logprobs, lse });
      };
      const s = await forward(be64), u = await forward(be);
      assertClose("logprobs", s.logprobs, u.logprobs, TOL);
      assertClose("lse", s.lse, u.lse, TOL);
      // the same lse into both, so only the backward is compared
      const backward = async (b: Backend) => {
        const t = b.fromInts(targets, [N]);
        const inputs = {
          dlp: b.fromArray(dlp, [N]),
          l: b.fromArray(logits, [N, V]),
          lse: b.fromArray(u.lse, [N]),
        };
        const d = b.logSoftmaxGatherBackward(
          inputs.dlp,
          inputs.l,
          t,
          inputs.lse,
        );
        b.free(t);
        return (await readAll(b, { d, ...inputs })).d;
      };
      assert.deepEqual(await backward(be64), await backward(be));
    },
  });

  Deno.test({
    name:
      "split: sample over split logits matches the cpu (V 8000 at 64 KiB, V 32000 at 160 KiB)",
    ...opts,
    fn: async () => {
      await sampleCase(be64, 5, 8000); // two rows per binding: groups 2, 2, 1
      await sampleCase(be160, 4, 32000); // one row per binding
    },
  });

  Deno.test({
    name:
      "split: markTokens and repetitionPenalty over split [B, V] match the cpu",
    ...opts,
    fn: async () => {
      const b = 5, v = 8000, r = new Rng(12);
      const logits = r.floats(b * v, -6, 6);
      const ids = Int32Array.from({ length: b * 6 }, (_, i) => (i * 4001) % v);
      const drawn = Int32Array.from({ length: b }, (_, i) => v - 1 - i * 700);
      const run = async (x: Backend) => {
        const seen = x.zeros([b, v]), l = x.fromArray(logits, [b, v]);
        for (const t of [ids, drawn]) {
          const tt = x.fromInts(t, [t.length]);
          x.markTokens(seen, tt);
          x.free(tt);
        }
        x.repetitionPenalty(l, seen, 1.7);
        const out = [await x.read(seen), await x.read(l)];
        const blocks = x === cpu ? 0 : blocksOf(seen);
        x.free(seen);
        x.free(l);
        return { out, blocks };
      };
      const got = await run(be64), want = await run(cpu);
      assert.ok(got.blocks > 1);
      assertClose("seen", got.out[0], want.out[0], EXACT);
      assertClose("logits", got.out[1], want.out[1], TOL);
      // 6 distinct prompt ids and one other drawn id per row
      assert.equal(want.out[0].reduce((s, x) => s + x, 0), b * 7);
    },
  });

  Deno.test({
    name: "split: elementwise ops, sumOfSquares and adamw work block by block",
    ...opts,
    fn: async () => {
      const r = new Rng(11);
      const shape = [300, 100];
      const [p, g, m, v, a] = [0, 1, 2, 3, 4].map(() => r.floats(30000));
      const run = async (b: Backend) => {
        const [tp, tg, tm, tv0, ta] = [p, g, m, v, a].map((d) =>
          b.fromArray(d, shape)
        );
        const sum = b.add(ta, tg), prod = b.mul(ta, tg);
        b.axpy(ta, tg, -0.5);
        const tv = b.mul(tv0, tv0); // second moments are non-negative
        b.adamw([tp], [tg], [tm], [tv], {
          lr: 1e-2,
          beta1: 0.9,
          beta2: 0.95,
          eps: 1e-8,
          weightDecay: 0.1,
          step: 3,
          gradScale: 0.5,
        });
        const ss = await b.sumOfSquares([tg, ta]);
        const out = await b.readMany([sum, prod, ta, tp, tm, tv]);
        for (const t of [tp, tg, tm, tv0, ta, sum, prod, tv]) b.free(t);
        return { ss, out };
      };
      const s = await run(be64), c = await run(cpu), u = await run(be);
      assert.ok(Math.abs(s.ss - c.ss) <= 1e-4 * Math.abs(c.ss));
      s.out.forEach((o, i) =>
        assertClose(`elementwise ${i}`, o, c.out[i], TOL)
      );
      // elementwise and AdamW do not reduce: bit-identical to unsplit
      s.out.forEach((o, i) => assert.deepEqual(o, u.out[i], `output ${i}`));
    },
  });

  Deno.test({
    name:
      "split: ops that do not take split tensors refuse, naming op, tensor and limit",
    ...opts,
    fn: () => {
      const xs = be64.zeros([300, 100]);
      const w = be64.zeros([100]);
      assert.throws(
        () => be64.rmsNorm(xs, w, 1e-5),
        (e: unknown) =>
          e instanceof BindingLimitError && e.op === "rmsNorm" &&
          /rmsNorm: x \[300, ?100\] is 120000 bytes, split over 3 buffers.*binding limit 65536 bytes/
            .test(e.message),
      );
      assert.throws(() => be64.swiglu(xs, xs), BindingLimitError);
      // a row of 128000 bytes cannot be sampled under a 64 KiB binding
      const wide = be64.zeros([2, 32000]), us = be64.zeros([2]);
      assert.throws(
        () => be64.sample(wide, us, sampleOpts[0]),
        /sample: logits \[2, ?32000\]: one row is 128000 bytes.*binding limit 65536/,
      );
      for (const t of [xs, w, wide, us]) be64.free(t);
    },
  });
}
