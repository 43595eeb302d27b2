import assert from "node:assert/strict";
import { CpuBackend } from "../cpu/backend.ts";
import type { Backend, Tensor } from "../backend.ts";
import {
  haveAdapter,
  testBackend,
  testBackendGpuKernels,
} from "./_open_for_test.ts";
import { close, rand } from "./_test_data.ts";
import { WebGpuBackend } from "./backend.ts";

const be = await testBackend();
const opts = { sanitizeOps: false, sanitizeResources: false };
const cpu = new CpuBackend();

async function same(g: Backend, gt: Tensor, ct: Tensor, what: string) {
  close(await g.read(gt), await cpu.read(ct), what);
}

/** c = alpha · op(a) op(b) + beta · c on the gpu and the cpu; returns texture copies made. */
async function gemmCase(
  g: WebGpuBackend,
  m: number,
  n: number,
  k: number,
  transB: boolean,
  seed: number,
  transA = false,
  beta = 2,
): Promise<number> {
  const a = rand(m * k, seed), b = rand(k * n, seed + 1);
  const c = rand(m * n, seed + 2);
  const sa = transA ? [k, m] : [m, k], sb = transB ? [n, k] : [k, n];
  const o = { transA, transB, alpha: 0.5, beta };
  const before = g.ctx.textureCopies;
  const got = g.gemm(g.fromArray(a, sa), g.fromArray(b, sb), {
    ...o,
    out: g.fromArray(c, [m, n]),
  });
  const copies = g.ctx.textureCopies - before;
  const want = cpu.gemm(cpu.fromArray(a, sa), cpu.fromArray(b, sb), {
    ...o,
    out: cpu.fromArray(c, [m, n]),
  });
  await same(
    g,
    got,
    want,
    `gemm ${m}x${n}x${k} transA ${transA} transB ${transB}`,
  );
  return copies;
}

/** {@linkcode gemmCase}'s texture copies, and the dispatches it recorded. */
async function copiesAndDispatches(
  g: WebGpuBackend,
  m: number,
  n: number,
  k: number,
  transB: boolean,
  seed: number,
  transA = false,
  beta = 2,
): Promise<[number, number]> {
  const d = g.ctx.dispatches;
  const copies = await gemmCase(g, m, n, k, transB, seed, transA, beta);
  return [copies, g.ctx.dispatches - d];
}

if (haveAdapter(be)) {
  // a small texture-fed tile (quick to compile), 2-D workgroups, edges that
  // cut through tiles
  const tex = () => {
    const g = new WebGpuBackend(be.ctx);
    g.planner.main = { kind: "tex", tm: 4, tn: 8, wx: 8, wy: 2 };
    return g;
  };

  Deno.test({
    name:
      "webgpu texture-fed matmul matches the cpu for x·Wᵀ and x·W, and falls back where it cannot apply",
    ...opts,
    fn: async () => {
      const g = tex();
      assert.equal(await gemmCase(g, 100, 76, 128, true, 1), 2);
      // b [K,N]: a's copy and one per strip of 64 columns (tn·wx)
      assert.equal(await gemmCase(g, 70, 128, 192, false, 4), 1 + 2);
      // n not a multiple of 64 with b [K,N], k not a multiple of 64 (nor of
      // 4): packed into the textures by kernels instead of copied
      const packed = (
        m: number,
        n: number,
        k: number,
        transB: boolean,
        seed: number,
      ) => copiesAndDispatches(g, m, n, k, transB, seed);
      // a copied; b's strips packed; the product
      assert.deepEqual(await packed(70, 72, 128, false, 7), [1, 2]);
      // k a multiple of 4: a's and b's rows copied in 16 phases of rows
      // 256 bytes apart; b rewritten into strips, the product
      assert.deepEqual(await packed(70, 72, 100, true, 10), [32, 2]);
      // 8 phases of a; b's strips packed
      assert.deepEqual(await packed(100, 68, 104, false, 11), [8, 2]);
      // k not a multiple of 4: a and b's rows packed, rewritten into strips,
      // the product
      assert.deepEqual(await packed(70, 72, 102, true, 11), [0, 4]);
      // a and b's strips packed, the product
      assert.deepEqual(await packed(65, 136, 102, false, 12), [0, 3]);
      assert.deepEqual(await packed(100, 68, 3, false, 14), [0, 3]);
      assert.deepEqual(await packed(100, 68, 3, true, 15), [0, 4]);
      // n not a multiple of 4: storage-fed with b [K,N]; with x·Wᵀ (a
      // vocabulary-wide product) a's and b's rows copied, b rewritten into
      // strips, c stored a float at a time
      assert.deepEqual(await packed(70, 70, 128, false, 17), [0, 1]);
      assert.deepEqual(await packed(70, 70, 128, true, 18), [2, 2]);
      assert.deepEqual(await packed(70, 259, 64, true, 19), [2, 2]);
    },
  });

  Deno.test({
    name:
      "webgpu texture-fed matmul with aᵀ (the LoRA weight gradients) matches the cpu: a copied in phases and transposed",
    ...opts,
    fn: async () => {
      const g = tex();
      const run = (
        m: number,
        n: number,
        k: number,
        transB: boolean,
        seed: number,
      ) => copiesAndDispatches(g, m, n, k, transB, seed, true);
      // a [36,16]: rows 64 bytes, copied in 4 phases, transposed; b's
      // strips packed (40 columns); the product
      assert.deepEqual(await run(16, 40, 36, false, 40), [4, 3]);
      // a [100,12] in 16 phases, b [64,100] rows in 16 phases; both
      // transposed, the product
      assert.deepEqual(await run(12, 64, 100, true, 41), [32, 3]);
      // skinny output (the rank-r dB): a [20,64] in one copy
      assert.deepEqual(await run(64, 8, 20, false, 42), [1, 3]);
      // at most 8 rows: texture-fed without beta (a [36,8] in 8 phases, or
      // [36,4] in 16, transposed; b's 64 columns one strip; the product),
      // storage-fed with it (TEX_MIN_ROWS); m or k not a multiple of 4:
      // storage-fed
      assert.deepEqual(
        await copiesAndDispatches(g, 8, 64, 36, false, 46, true, 0),
        [8 + 1, 2],
      );
      assert.deepEqual(
        await copiesAndDispatches(g, 4, 64, 36, false, 47, true, 0),
        [16 + 1, 2],
      );
      assert.deepEqual(await run(8, 64, 36, false, 45), [0, 1]);
      assert.deepEqual(await run(10, 64, 36, false, 43), [0, 1]);
      assert.deepEqual(await run(16, 64, 38, false, 44), [0, 1]);
    },
  });

  Deno.test({
    name:
      "webgpu texture-fed matmul: workgroups taking tiles from a counter cover every tile of products recorded back to back, bit-identically",
    ...opts,
    fn: async () => {
      const g = tex();
      // 8×64 tiles: 75·2 = 150 tiles, more than TEX_WORKGROUPS, so
      // workgroups take several; each product's counter starts from zero
      const [m, n, k] = [600, 128, 32];
      const a = rand(m * k, 30), b = rand(k * n, 31);
      const ga = g.fromArray(a, [m, k]), gb = g.fromArray(b, [k, n]);
      const outs = [0, 1, 2].map(() => g.gemm(ga, gb));
      const want = cpu.gemm(cpu.fromArray(a, [m, k]), cpu.fromArray(b, [k, n]));
      const first = await g.read(outs[0]);
      close(first, await cpu.read(want), "tiled gemm");
      for (const o of outs.slice(1)) {
        assert.deepEqual(await g.read(o), first, "rerun bit-identical");
      }
      for (const o of [ga, gb, ...outs]) g.free(o);
    },
  });

  Deno.test({
    name:
      "webgpu texture-fed matmul: no workgroup passes llvmpipe's loop limit (1024³ exact)",
    ...opts,
    fn: async () => {
      // 512 tiles of 16×128 with K/4 = 256 trips each: a workgroup taking
      // the tiles of one llvmpipe thread (~256) would pass 65,535 trips and
      // be cut short silently; TMAX caps it (texTilesPerGroup)
      const g = new WebGpuBackend(be.ctx);
      g.planner.main = { kind: "tex", tm: 16, tn: 16, wx: 8, wy: 1 };
      const n = 1024;
      const a = rand(n * n, 50), b = rand(n * n, 51);
      const got = g.gemm(g.fromArray(a, [n, n]), g.fromArray(b, [n, n]));
      const want = cpu.gemm(cpu.fromArray(a, [n, n]), cpu.fromArray(b, [n, n]));
      close(await g.read(got), await cpu.read(want), "1024³");
    },
  });

  Deno.test({
    name:
      "webgpu texture-fed matmul reads operands that are views at an offset into a buffer",
    ...opts,
    fn: async () => {
      const g = tex();
      // k a multiple of 4 (copies in phases), of 2 (packed); b [N,K] and
      // [K,N] (n = 72: strips packed)
      for (
        const [m, n, k, transB] of [[70, 72, 100, true], [70, 72, 100, false], [
          70,
          72,
          102,
          true,
        ], [70, 72, 102, false]] as const
      ) {
        const sb = transB ? [n, k] : [k, n];
        const [, ga, gb] = g.zerosPacked([[3], [m, k], sb]);
        const a = rand(m * k, m + k), b = rand(n * k, n + k + 1);
        g.write(ga, a);
        g.write(gb, b);
        const what = `view gemm ${m}x${n}x${k} transB ${transB}`;
        await same(
          g,
          g.gemm(ga, gb, { transB }),
          cpu.gemm(cpu.fromArray(a, [m, k]), cpu.fromArray(b, sb), { transB }),
          what,
        );
      }
    },
  });

  Deno.test({
    name:
      "webgpu texture-fed matmul splits operands past the texture size limit into blocks",
    ...opts,
    fn: async () => {
      const g = tex();
      g.planner.textureLimit = 64;
      // a: 2 row blocks; b [N,K]: 2 blocks of 64 and 12 rows, laid out
      // once (the second row block reuses them from the texture cache)
      assert.equal(await gemmCase(g, 100, 76, 256, true, 13), 2 + 2);
      // b [N,K] with K = 64 (rewritten into strips): b blocks of 64 and 12
      // rows
      assert.equal(await gemmCase(g, 100, 76, 64, true, 19), 2 + 2);
      // b [K,N] (K = 64): column blocks of 256 and 64, i.e. 4 + 1 strips of
      // 64 columns
      assert.equal(await gemmCase(g, 100, 320, 64, false, 16), 2 + 5);
      // k = 60 (16 phases): blocks of 64 and 36 rows of a, b blocks of 64
      // and 12 rows (12 phases of one row)
      assert.equal(await gemmCase(g, 100, 76, 60, true, 18), 2 * 16 + 28);
      // k = 100 past the limit: b's rows read as rows, packed (that kernel
      // reads the plain layout)
      assert.equal(await gemmCase(g, 100, 76, 100, true, 20), 2 * 16);
    },
  });

  Deno.test({
    name:
      "webgpu texture-fed matmul reuses an operand's texture until its buffer is written",
    ...opts,
    fn: async () => {
      const g = tex();
      const [m, n, k] = [96, 128, 128];
      const xs = rand(m * k, 40);
      let ws = rand(n * k, 41);
      const x = g.fromArray(xs, [m, k]), w = g.fromArray(ws, [n, k]);
      const check = async (what: string) => {
        const before = g.ctx.textureCopies, hits = g.ctx.textureCache.hits;
        const got = g.gemm(x, w, { transB: true });
        const want = cpu.gemm(
          cpu.fromArray(xs, [m, k]),
          cpu.fromArray(ws, [n, k]),
          {
            transB: true,
          },
        );
        await same(g, got, want, what);
        g.free(got);
        return {
          copies: g.ctx.textureCopies - before,
          hits: g.ctx.textureCache.hits - hits,
        };
      };
      assert.ok((await check("first")).copies > 0);
      assert.deepEqual(await check("again"), { copies: 0, hits: 2 });
      // every way of writing w is seen: upload, a kernel, clear, copy
      const writes: [string, () => void, () => Float32Array][] = [
        ["write", () => g.write(w, rand(n * k, 42)), () => rand(n * k, 42)],
        ["axpy", () => {
          const same = g.fromArray(ws, [n, k]);
          g.axpy(w, same, 1);
          g.free(same);
        }, () => ws.map((v) => v + v)],
        ["zero", () => g.zero(w), () => new Float32Array(n * k)],
        ["copy", () => {
          const src = g.fromArray(rand(n * k, 43), [n, k]);
          g.copy(w, src);
          g.free(src);
        }, () => rand(n * k, 43)],
      ];
      for (const [what, doWrite, now] of writes) {
        doWrite();
        ws = now();
        const r = await check(`after ${what}`);
        assert.equal(r.hits, 1, `${what}: x still cached, w laid out again`);
      }
      g.free(x);
      g.free(w);
    },
  });

  Deno.test({
    name:
      "webgpu texture-fed linear and linearBackward with the fused LoRA terms match the cpu",
    ...opts,
    fn: async () => {
      const g = tex();
      // texture copies made by linear and by linearBackward
      const step = async (r: number): Promise<[number, number]> => {
        const [n, inF, outF] = [100, 192, 128];
        const x = rand(n * inF, 20), w = rand(outF * inF, 21);
        const la = rand(r * inF, 22), lb = rand(outF * r, 23);
        const dy = rand(n * outF, 24);
        const gl = {
          a: g.fromArray(la, [r, inF]),
          b: g.fromArray(lb, [outF, r]),
          scale: 1.5,
        };
        const cl = {
          a: cpu.fromArray(la, [r, inF]),
          b: cpu.fromArray(lb, [outF, r]),
          scale: 1.5,
        };
        const gx = g.fromArray(x, [n, inF]), cx = cpu.fromArray(x, [n, inF]);
        const gw = g.fromArray(w, [outF, inF]);
        const cw = cpu.fromArray(w, [outF, inF]);
        const before = g.ctx.textureCopies;
        let mid = 0;
        const gy = g.linear(gx, gw, gl), cy = cpu.linear(cx, cw, cl);
        await same(g, gy.y, cy.y, "linear y");
        mid = g.ctx.textureCopies;
        const gg = g.linearBackward(g.fromArray(dy, [n, outF]), gx, gw, gl);
        const cg = cpu.linearBackward(cpu.fromArray(dy, [n, outF]), cx, cw, cl);
        await same(g, gg.dx, cg.dx, "dx");
        await same(g, gg.da!, cg.da!, "da");
        await same(g, gg.db!, cg.db!, "db");
        return [mid - before, g.ctx.textureCopies - mid];
      };
      // rank 12: every product goes through textures. linear: x Aᵀ and x
      // Wᵀ read one copy of x, then A, W; the LoRA term on textures: x Aᵀ's
      // [100,12] rows and B's [128,12] rows in 16 phases each. Backward: dy
      // B and dy W read dy's copy (1) and W's 3 strips; dy W's LoRA term
      // copies dy B's [100,12] rows in 16 phases and A's 3 strips; (dy B)ᵀ x
      // copies dy B's rows again, to transpose them (16), and x's 3 strips;
      // dyᵀ (x Aᵀ) copies dy to transpose it (1); B's and x Aᵀ's 12 columns
      // are packed
      assert.deepEqual(await step(12), [
        3 + 16 + 16,
        1 + 3 + 16 + 3 + 16 + 3 + 1,
      ]);
      // rank 6: x Aᵀ runs on textures (x, A; c a float at a time), the
      // other rank-r products are storage-fed, and the LoRA terms of x Wᵀ
      // (W) and dy W (dy, W's 3 strips) are read from storage
      assert.deepEqual(await step(6), [3, 1 + 3]);
    },
  });
}

if (haveAdapter(be)) {
  Deno.test({
    name:
      "webgpu GPU kernels: a product with a small output and a long k splits k, and matches the cpu with alpha and beta",
    ...opts,
    fn: async () => {
      const g = (await testBackendGpuKernels())!;
      // [m, n, k]: LoRA weight gradients (r × d over 1024 tokens), odd sizes
      // (no vec4 loads, k not a multiple of 4), and one too short to split.
      const cases: [number, number, number, number][] = [
        [16, 256, 1024, 2],
        [16, 64, 1024, 2],
        [13, 97, 1003, 2],
        [8, 200, 1000, 2],
        [16, 256, 100, 1],
        // too little work to be worth a second dispatch (a decoding step)
        [1, 256, 256, 1],
      ];
      for (const [m, n, k, dispatches] of cases) {
        for (const beta of [0, 2]) {
          const [, d] = await copiesAndDispatches(
            g,
            m,
            n,
            k,
            false,
            7,
            true,
            beta,
          );
          assert.equal(
            d,
            dispatches,
            `${m}x${n}x${k} beta ${beta}: dispatches`,
          );
        }
      }
      // x·Aᵀ and x·A shapes: [tokens, r] outputs.
      for (const transB of [true, false]) {
        for (const [m, n, k] of [[1024, 16, 256], [600, 12, 257]]) {
          const [, d] = await copiesAndDispatches(g, m, n, k, transB, 9);
          assert.equal(d, 2, `${m}x${n}x${k} transB ${transB}: dispatches`);
        }
      }
      // Split or not, the same inputs give the same bits every run.
      const a = g.fromArray(rand(1024 * 16, 3), [1024, 16]);
      const b = g.fromArray(rand(1024 * 256, 4), [1024, 256]);
      const once = await g.read(g.gemm(a, b, { transA: true }));
      assert.deepEqual(await g.read(g.gemm(a, b, { transA: true })), once);
    },
  });
}
