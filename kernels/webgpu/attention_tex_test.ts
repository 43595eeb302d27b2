import assert from "node:assert/strict";
import { CpuBackend } from "../cpu/backend.ts";
import type { AttentionDims, Backend, Tensor } from "../backend.ts";
import { haveAdapter, testBackend } from "./_open_for_test.ts";
import { close, rand } from "./_test_data.ts";
import type { WebGpuBackend } from "./backend.ts";

const be = await testBackend();
const opts = { sanitizeOps: false, sanitizeResources: false };
const cpu = new CpuBackend();

/**
 * Attention and its backward on the gpu and the cpu; checks them and returns
 * the texture copies each made and the gpu outputs.
 */
async function attentionCase(
  be: WebGpuBackend,
  dims: AttentionDims,
  seed: number,
): Promise<{ copies: [number, number]; outs: Float32Array[] }> {
  const kvRows = dims.kvRows ?? dims.tk;
  const qs = [dims.batch * dims.tq, dims.heads * dims.headDim];
  const ks = [dims.batch * kvRows, dims.kvHeads * dims.headDim];
  const data = [qs, ks, ks, qs].map((s, i) =>
    rand(s[0] * s[1], seed + i, -2, 2)
  );
  const on = (b: Backend): Tensor[] =>
    [qs, ks, ks, qs].map((s, i) => b.fromArray(data[i], s));
  const [gq, gk, gv, gdo] = on(be), [cq, ck, cv, cdo] = on(cpu);
  const c0 = be.ctx.textureCopies;
  const got = be.attention(gq, gk, gv, dims);
  const c1 = be.ctx.textureCopies;
  const want = cpu.attention(cq, ck, cv, dims);
  const what = JSON.stringify(dims);
  const out = await be.read(got.out), lse = await be.read(got.lse);
  close(out, await cpu.read(want.out), `${what} out`);
  close(lse, await cpu.read(want.lse), `${what} lse`);
  const gg = be.attentionBackward(gdo, gq, gk, gv, got.out, got.lse, dims);
  const c2 = be.ctx.textureCopies;
  const cg = cpu.attentionBackward(cdo, cq, ck, cv, want.out, want.lse, dims);
  const grads = await be.readMany([gg.dq, gg.dk, gg.dv]);
  const wants = await cpu.readMany([cg.dq, cg.dk, cg.dv]);
  ["dq", "dk", "dv"].forEach((n, i) =>
    close(grads[i], wants[i], `${what} ${n}`)
  );
  return { copies: [c1 - c0, c2 - c1], outs: [out, lse, ...grads] };
}

if (
  haveAdapter(be) && (be as { ctx?: { isFallback: boolean } }).ctx?.isFallback
) {
  Deno.test({
    name:
      "webgpu texture-fed attention (CPU adapters) matches the cpu, forward and backward, bit-identical on rerun",
    ...opts,
    fn: async () => {
      // grouped heads, a KV buffer longer than the keys, queries at the end
      const gqa = {
        batch: 2,
        tq: 9,
        tk: 12,
        kvRows: 14,
        heads: 8,
        kvHeads: 2,
        headDim: 32,
      };
      const first = await attentionCase(be, gqa, 1);
      // q, k, v copied into textures; then q, k, v, dout
      assert.deepEqual(first.copies, [3, 4]);
      const again = await attentionCase(be, gqa, 1);
      again.outs.forEach((o, i) =>
        assert.deepEqual(o, first.outs[i], `rerun output ${i}`)
      );
      // the training shape: one head group per head, 64-wide heads
      const train = {
        batch: 2,
        tq: 40,
        tk: 40,
        heads: 4,
        kvHeads: 4,
        headDim: 64,
      };
      assert.deepEqual((await attentionCase(be, train, 7)).copies, [3, 4]);
    },
  });

  Deno.test({
    name:
      "webgpu attention stays storage-fed for one query per sequence and for rows that are not a multiple of 64 floats",
    ...opts,
    fn: async () => {
      const decode = {
        batch: 2,
        tq: 1,
        tk: 12,
        kvRows: 16,
        heads: 4,
        kvHeads: 2,
        headDim: 32,
      };
      assert.deepEqual((await attentionCase(be, decode, 3)).copies, [0, 0]);
      const narrow = {
        batch: 1,
        tq: 6,
        tk: 6,
        heads: 3,
        kvHeads: 3,
        headDim: 20,
      };
      assert.deepEqual((await attentionCase(be, narrow, 5)).copies, [0, 0]);
    },
  });
}
