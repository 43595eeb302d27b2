import assert from "node:assert/strict";
import { CpuBackend } from "../cpu/backend.ts";
import type { Backend, Tensor } from "../backend.ts";
import {
  haveAdapter,
  testBackend,
  testBackendGpuKernels,
} from "./_open_for_test.ts";
import { close, rand } from "./_test_data.ts";
import { candidates } from "./autotune.ts";
import { WebGpuBackend } from "./backend.ts";
import { FLUSH_EVERY } from "./context.ts";
import { WebGpuError } from "./errors.ts";
import { configName } from "./shaders/matmul.ts";

const be = await testBackend();
const opts = { sanitizeOps: false, sanitizeResources: false };

if (haveAdapter(be)) {
  Deno.test({
    name:
      "webgpu autotune times every candidate, adopts the fastest, then recalls it",
    ...opts,
    fn: async () => {
      // two cheap-to-compile candidates of this adapter's kind keep the test short
      const cands = candidates(be.ctx.isFallback, be.ctx.device.limits)
        .map((c) => ({ ...c, tm: 4, tn: 4 }))
        .filter((c, i, all) =>
          all.findIndex((d) => configName(d) === configName(c)) === i
        )
        .slice(0, 2);
      const before = be.planner.main;
      const r = await be.tune({ useCache: false, size: 128, cands });
      assert.equal(r.source, "timed");
      assert.deepEqual(
        Object.keys(r.gflops).sort(),
        cands.map(configName).sort(),
      );
      const fastest = Object.entries(r.gflops).sort((a, b) =>
        b[1] - a[1]
      )[0][0];
      assert.equal(configName(r.best), fastest);
      assert.equal(be.planner.main, r.best);
      // CPU adapters get no workgroup-memory candidates
      if (be.ctx.isFallback) assert.ok(cands.every((c) => c.kind !== "shared"));
      const again = await be.tune({ size: 128, cands });
      assert.equal(configName(again.best), configName(r.best));
      assert.notEqual(again.source, "timed");
      be.planner.main = before;
    },
  });

  Deno.test({
    name:
      "webgpu with the GPU kernels: steps after the first reuse its buffers and bind groups",
    ...opts,
    fn: async () => {
      const g = (await testBackendGpuKernels())!;
      const x = g.fromArray(rand(48 * 40, 1), [48, 40]);
      const w = g.fromArray(rand(36 * 40, 2), [36, 40]);
      const lora = {
        a: g.fromArray(rand(4 * 40, 3), [4, 40]),
        b: g.fromArray(rand(36 * 4, 4), [36, 4]),
        scale: 0.5,
      };
      // Tensors freed in another order each step: the pool still hands out
      // the same buffers, so the same bind groups serve.
      const step = (i: number) => {
        const { y, xa } = g.linear(x, w, lora);
        const d = g.linearBackward(y, x, w, lora, xa);
        const ts = [y, xa!, d.dx, d.da!, d.db!];
        for (let j = 0; j < ts.length; j++) g.free(ts[(j + i) % ts.length]);
      };
      step(0);
      await g.sync();
      const made = g.ctx.bindGroups.misses, hits = g.ctx.bindGroups.hits;
      for (let i = 1; i <= 3; i++) step(i);
      await g.sync();
      assert.equal(g.ctx.bindGroups.misses, made, "no bind group made");
      assert.ok(g.ctx.bindGroups.hits - hits >= 3 * 4);
      // Long recordings are submitted as they go, FLUSH_EVERY dispatches at a time.
      const s0 = g.ctx.submits, d0 = g.ctx.dispatches;
      for (let i = 0; i < 20; i++) step(i);
      const recorded = g.ctx.dispatches - d0;
      assert.ok(recorded >= FLUSH_EVERY, `${recorded} dispatches`);
      assert.equal(
        g.ctx.submits - s0,
        Math.floor(recorded / FLUSH_EVERY),
        "submits while recording",
      );
      await g.sync();
    },
  });

  Deno.test({
    name:
      "webgpu ops only record; read waits once and the pool reuses freed buffers",
    ...opts,
    fn: async () => {
      const x = be.fromArray(rand(48 * 40, 1), [48, 40]);
      const w = be.fromArray(rand(36 * 40, 2), [36, 40]);
      const a = be.fromArray(rand(4 * 40, 3), [4, 40]);
      const b = be.fromArray(rand(36 * 4, 4), [36, 4]);
      const lora = { a, b, scale: 0.5 };
      const step = () => {
        const { y, xa } = be.linear(x, w, lora);
        const g = be.linearBackward(y, x, w, lora, xa);
        for (const t of [y, xa!, g.dx, g.da!, g.db!]) be.free(t);
      };
      step(); // warm-up: compiles pipelines and fills the pool
      await be.sync();
      const created = be.ctx.poolStats().created;
      const submits = be.ctx.submits;
      for (let i = 0; i < 3; i++) step();
      assert.equal(be.ctx.submits, submits, "recording ops must not submit");
      assert.equal(
        be.ctx.poolStats().created,
        created,
        "no buffer allocated after warm-up",
      );
      const y = be.linear(x, w, lora).y;
      await be.read(y);
      assert.equal(be.ctx.submits, submits + 1, "one submit per read");
    },
  });

  Deno.test({
    name: "webgpu validation errors name the kernel",
    ...opts,
    fn: async () => {
      const t = be.zeros([4]) as unknown as {
        buffer: GPUBuffer;
        bytes: number;
      };
      be.ctx.run(
        {
          name: "broken_kernel",
          uniforms: [["n", "u32"]],
          buffers: [["x", "read_write", "array<f32>"]],
          body:
            "@compute @workgroup_size(64) fn main() { x[0] = undefined_thing; }",
        },
        [t],
        [4],
        [1],
      );
      await assert.rejects(be.sync(), (e: unknown) => {
        assert.ok(e instanceof WebGpuError);
        assert.equal(e.kernel, "broken_kernel");
        assert.match(
          e.message,
          /^broken_kernel: shader or pipeline creation failed/,
        );
        return true;
      });
      // a bad binding (vec4 array over 4 bytes) fails at dispatch, naming the kernel
      be.ctx.run(
        {
          name: "small_binding",
          uniforms: [],
          buffers: [["x", "read_write", "array<vec4<f32>>"]],
          body:
            "@compute @workgroup_size(1) fn main() { x[0] = vec4<f32>(1.0); }",
        },
        [{ buffer: t.buffer, bytes: 4 }],
        [],
        [1],
      );
      await assert.rejects(be.sync(), /small_binding/);
      await be.sync(); // errors are reported once
    },
  });

  Deno.test({
    name: "webgpu reruns are bit-identical",
    ...opts,
    fn: async () => {
      const run = async (): Promise<Float32Array[]> => {
        const x = be.fromArray(rand(37 * 64, 5), [37, 64]);
        const w = be.fromArray(rand(96 * 64, 6), [96, 64]);
        const nw = be.fromArray(rand(64, 7), [64]);
        const n = be.rmsNorm(x, nw, 1e-5);
        const { y } = be.linear(n.y, w);
        const dims = {
          batch: 1,
          tq: 37,
          tk: 37,
          heads: 2,
          kvHeads: 1,
          headDim: 32,
        };
        const q = be.gemm(y, be.fromArray(rand(64 * 96, 8), [64, 96]), {
          transB: true,
        });
        const kv = be.gemm(y, be.fromArray(rand(96 * 32, 9), [32, 96]), {
          transB: true,
        });
        const att = be.attention(q, kv, kv, dims);
        const g = be.attentionBackward(
          att.out,
          q,
          kv,
          kv,
          att.out,
          att.lse,
          dims,
        );
        const ids = be.fromInts(
          new Int32Array(37).map((_, i) => (i * 7) % 96),
          [37],
        );
        const ls = be.logSoftmaxGather(y, ids);
        const ss = await be.sumOfSquares([g.dq, g.dk, y]);
        return [
          await be.read(att.out),
          await be.read(g.dq),
          await be.read(g.dk),
          await be.read(ls.logprobs),
          new Float32Array([ss]),
        ];
      };
      const first = await run();
      const second = await run();
      for (let i = 0; i < first.length; i++) {
        assert.deepEqual(
          new Uint8Array(second[i].buffer),
          new Uint8Array(first[i].buffer),
        );
      }
    },
  });

  Deno.test({
    name:
      "webgpu attention over 1200 keys matches the cpu (no per-invocation loop cap)",
    ...opts,
    fn: async () => {
      const cpu = new CpuBackend();
      const dims = {
        batch: 1,
        tq: 4,
        tk: 1200,
        heads: 1,
        kvHeads: 1,
        headDim: 64,
      };
      const data = [rand(4 * 64, 10), rand(1200 * 64, 11), rand(1200 * 64, 12)];
      const on = (b: Backend): Tensor[] =>
        [[4, 64], [1200, 64], [1200, 64]].map((s, i) =>
          b.fromArray(data[i], s)
        );
      const [gq, gk, gv] = on(be);
      const [cq, ck, cv] = on(cpu);
      const got = be.attention(gq, gk, gv, dims);
      const want = cpu.attention(cq, ck, cv, dims);
      close(await be.read(got.out), await cpu.read(want.out));
      close(await be.read(got.lse), await cpu.read(want.lse));
    },
  });

  Deno.test({
    name:
      "webgpu workgroup-memory matmul (the real-GPU variant) matches the cpu",
    ...opts,
    fn: async () => {
      const cpu = new CpuBackend();
      const shared = new WebGpuBackend(be.ctx);
      shared.planner.main = {
        kind: "shared",
        tm: 4,
        tn: 4,
        wx: 16,
        wy: 16,
        bk: 16,
      };
      for (
        const [transA, transB] of [
          [false, false],
          [true, false],
          [false, true],
          [true, true],
        ]
      ) {
        const [m, n, k] = [70, 67, 45];
        const a = rand(m * k, 13), b = rand(k * n, 14), c = rand(m * n, 15);
        const sa = transA ? [k, m] : [m, k], sb = transB ? [n, k] : [k, n];
        const o = { transA, transB, alpha: 0.5, beta: 2 };
        const got = shared.gemm(
          shared.fromArray(a, sa),
          shared.fromArray(b, sb),
          {
            ...o,
            out: shared.fromArray(c, [m, n]),
          },
        );
        const want = cpu.gemm(cpu.fromArray(a, sa), cpu.fromArray(b, sb), {
          ...o,
          out: cpu.fromArray(c, [m, n]),
        });
        close(await shared.read(got), await cpu.read(want));
      }
    },
  });
}

if (be) {
  Deno.test({
    name: "webgpu sample at a 151936-token vocabulary matches the cpu",
    ...opts,
    fn: async () => {
      const cpu = new CpuBackend();
      const v = 151936;
      const logits = rand(2 * v, 16).map((x) => x * 12);
      const u = new Float32Array([0.37, 0.91]);
      for (
        const o of [
          { temperature: 1, topK: -1, topP: 1 },
          { temperature: 0.7, topK: 50, topP: 0.9 },
        ]
      ) {
        const got = be.sample(
          be.fromArray(logits, [2, v]),
          be.fromArray(u, [2]),
          o,
        );
        const want = cpu.sample(
          cpu.fromArray(logits, [2, v]),
          cpu.fromArray(u, [2]),
          o,
        );
        assert.deepEqual(
          await be.readInts(got.tokens),
          await cpu.readInts(want.tokens),
        );
        close(await be.read(got.logprobs), await cpu.read(want.logprobs));
      }
    },
  });
}
