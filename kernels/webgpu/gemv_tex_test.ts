import assert from "node:assert/strict";
import { CpuBackend } from "../cpu/backend.ts";
import type { Backend, LoraWeights } from "../backend.ts";
import { haveAdapter, testBackend } from "./_open_for_test.ts";
import { close, rand } from "./_test_data.ts";

const be = await testBackend();
const opts = { sanitizeOps: false, sanitizeResources: false };
const cpu = new CpuBackend();

/**
 * linear(x, W, lora) for an [m,k] x and [n,k] W on the gpu and the cpu;
 * checks y and returns the gpu's texture copies and dispatches.
 */
async function linearCase(
  m: number,
  n: number,
  k: number,
  r: number,
  seed: number,
): Promise<[number, number]> {
  const x = rand(m * k, seed, -1, 1), w = rand(n * k, seed + 1, -1, 1);
  const la = rand(r * k, seed + 2, -1, 1), lb = rand(n * r, seed + 3, -1, 1);
  const on = (b: Backend) => {
    const lora: LoraWeights | undefined = r > 0
      ? { a: b.fromArray(la, [r, k]), b: b.fromArray(lb, [n, r]), scale: 1.5 }
      : undefined;
    return [b.fromArray(x, [m, k]), b.fromArray(w, [n, k]), lora] as const;
  };
  const [gx, gw, gl] = on(be!), [cx, cw, cl] = on(cpu);
  const c0 = be!.ctx.textureCopies, d0 = be!.ctx.dispatches;
  const got = be!.linear(gx, gw, gl).y;
  const counts: [number, number] = [
    be!.ctx.textureCopies - c0,
    be!.ctx.dispatches - d0,
  ];
  close(
    await be!.read(got),
    await cpu.read(cpu.linear(cx, cw, cl).y),
    `linear m${m} n${n} k${k} r${r}`,
  );
  return counts;
}

if (haveAdapter(be) && be.ctx.isFallback) {
  Deno.test({
    name:
      "webgpu few-row x·Wᵀ (decoding) runs texture-fed, a thread per column, and matches the cpu",
    ...opts,
    fn: async () => {
      // one row, W 256×256 (one copy each), no LoRA: one dispatch
      assert.deepEqual(await linearCase(1, 256, 256, 0, 1), [2, 1]);
      // 3 rows, a vocabulary-wide W (259 rows in 1 copy: k 64), rank 8:
      // x Aᵀ is few-row too; x, A, W, x Aᵀ's rows (8 phases) and B's
      // rows (8 phases); two dispatches
      assert.deepEqual(await linearCase(3, 259, 64, 8, 2), [
        1 + 1 + 1 + 3 + 8,
        2,
      ]);
      // 8 rows, k 36 (rows in 16 phases): x in 8, W (70 rows) in 16
      assert.deepEqual(await linearCase(8, 70, 36, 0, 3), [8 + 16, 1]);
    },
  });

  Deno.test({
    name:
      "webgpu few-row x·Wᵀ keeps W's texture while W is unchanged, and leaves other forms to the matmul kernels",
    ...opts,
    fn: async () => {
      const g = be!;
      const w = g.fromArray(rand(64 * 64, 9), [64, 64]);
      const x = g.fromArray(rand(2 * 64, 10), [2, 64]);
      g.linear(x, w);
      const c0 = g.ctx.textureCopies;
      g.write(x, rand(2 * 64, 11));
      const y = g.linear(x, w).y;
      // only x copied again
      assert.equal(g.ctx.textureCopies - c0, 1);
      close(
        await g.read(y),
        await cpu.read(
          cpu.linear(
            cpu.fromArray(rand(2 * 64, 11), [2, 64]),
            cpu.fromArray(rand(64 * 64, 9), [64, 64]),
          ).y,
        ),
        "after x changed",
      );
      // rank 6 (not whole texels): x Aᵀ runs few-row (x and A in 2 phases
      // each); the product with the LoRA term runs on the texture-fed
      // matmul (x's texture shared, W's rows in 2 phases rewritten into
      // strips, the LoRA term read from storage)
      assert.deepEqual(await linearCase(2, 64, 32, 6, 12), [2 + 2 + 2, 3]);
      // 9 rows: past the few-row kernel, the texture-fed matmul (x's and
      // W's rows in 2 phases each, W rewritten into strips)
      assert.deepEqual(await linearCase(9, 64, 32, 0, 13), [2 + 2, 2]);
    },
  });
}
