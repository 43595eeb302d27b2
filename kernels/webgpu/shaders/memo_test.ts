import assert from "node:assert/strict";
import { attentionDkvKernel } from "./attention.ts";
import { matmulKernel } from "./matmul.ts";
import { memoKernel } from "./memo.ts";

Deno.test("memoKernel builds a kernel once per argument list", () => {
  let built = 0;
  const k = memoKernel((n: number, tag: string) => {
    built++;
    return { name: `k${n}${tag}`, uniforms: [], buffers: [], body: "" };
  });
  assert.equal(k(4, "a"), k(4, "a"));
  assert.notEqual(k(4, "a"), k(4, "b"));
  assert.equal(built, 2);
});

Deno.test("the kernel factories hand back one kernel per form, whose name tells the forms apart", () => {
  const cfg = { kind: "reg", tm: 4, tn: 4, wx: 16, wy: 16 } as const;
  const shape = { transA: true, transB: false, vec: true, lora: "" } as const;
  assert.equal(
    matmulKernel(cfg, shape),
    matmulKernel({ ...cfg }, { ...shape }),
  );
  const split = matmulKernel(cfg, { ...shape, splitK: true });
  assert.notEqual(split.name, matmulKernel(cfg, shape).name);
  assert.notEqual(attentionDkvKernel(8, true).name, attentionDkvKernel(8).name);
});
