import assert from "node:assert/strict";
import { CpuBackend } from "../cpu/backend.ts";
import type { Backend, Tensor } from "../backend.ts";
import { haveAdapter, testBackend } from "./_open_for_test.ts";
import { WebGpuBackend } from "./backend.ts";

const be = await testBackend();
const opts = { sanitizeOps: false, sanitizeResources: false };
const cpu = new CpuBackend();

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return new Float32Array(n).map(() => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

function close(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= 1e-4 + 1e-3 * Math.abs(want[i]))) {
      assert.fail(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
    }
  }
}

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
): Promise<number> {
  const a = rand(m * k, seed), b = rand(k * n, seed + 1);
  const c = rand(m * n, seed + 2);
  const sb = transB ? [n, k] : [k, n];
  const o = { transB, alpha: 0.5, beta: 2 };
  const before = g.ctx.textureCopies;
  const got = g.gemm(g.fromArray(a, [m, k]), g.fromArray(b, sb), {
    ...o,
    out: g.fromArray(c, [m, n]),
  });
  const copies = g.ctx.textureCopies - before;
  const want = cpu.gemm(cpu.fromArray(a, [m, k]), cpu.fromArray(b, sb), {
    ...o,
    out: cpu.fromArray(c, [m, n]),
  });
  await same(g, got, want, `gemm ${m}x${n}x${k} transB ${transB}`);
  return copies;
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
      // n not a multiple of 64 with b [K,N], k not a multiple of 64: storage-fed
      assert.equal(await gemmCase(g, 70, 72, 128, false, 7), 0);
      assert.equal(await gemmCase(g, 70, 72, 100, true, 10), 0);
    },
  });

  Deno.test({
    name:
      "webgpu texture-fed matmul splits operands past the texture size limit into blocks",
    ...opts,
    fn: async () => {
      const g = tex();
      g.planner.textureLimit = 64;
      // a: 2 row blocks; b [N,K]: 2 blocks of 64 and 12 rows
      assert.equal(await gemmCase(g, 100, 76, 256, true, 13), 2 + 2 * 2);
      // b [N,K] with K = 64 (rewritten into strips): per row block, b
      // blocks of 64 and 12 rows
      assert.equal(await gemmCase(g, 100, 76, 64, true, 19), 2 + 2 * 2);
      // b [K,N] (K = 64): per row block, column blocks of 256 and 64, i.e.
      // 4 + 1 strips of 64 columns
      assert.equal(await gemmCase(g, 100, 320, 64, false, 16), 2 * (1 + 5));
    },
  });

  Deno.test({
    name:
      "webgpu texture-fed linear and linearBackward with the fused LoRA terms match the cpu",
    ...opts,
    fn: async () => {
      const g = tex();
      const [n, inF, outF, r] = [100, 192, 128, 8];
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
      const gy = g.linear(gx, gw, gl), cy = cpu.linear(cx, cw, cl);
      await same(g, gy.y, cy.y, "linear y");
      const gg = g.linearBackward(g.fromArray(dy, [n, outF]), gx, gw, gl);
      const cg = cpu.linearBackward(cpu.fromArray(dy, [n, outF]), cx, cw, cl);
      await same(g, gg.dx, cg.dx, "dx");
      await same(g, gg.da!, cg.da!, "da");
      await same(g, gg.db!, cg.db!, "db");
      // y = x Wᵀ (2 copies) and dx = dy W (dy, and W in 3 strips) both
      // went through textures
      assert.equal(g.ctx.textureCopies - before, 2 + 1 + 3);
    },
  });
}
