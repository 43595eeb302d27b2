import assert from "node:assert/strict";
import { checkGradients } from "../_fd.ts";
import { CpuBackend } from "./backend.ts";
import { Rng } from "./_random.ts";

const be = new CpuBackend();
const dims = { seqLen: 3, heads: 2, headDim: 4, offset: 5, theta: 10000 };

Deno.test("rope() at position 0 is the identity", () => {
  const x = new Rng(5).floats(2 * 8);
  const y = be.rope(be.fromArray(x, [2, 8]), { ...dims, seqLen: 1, offset: 0 });
  assert.deepEqual(be.f32View(y), x);
});

Deno.test("rope() hand-worked rotate-half pairs", () => {
  // D = 4, position 1: pair (0,2) turns by 1 rad, pair (1,3) by 1/100 rad (theta 10000^(-2/4))
  const x = be.fromArray(new Float32Array([1, 1, 0, 0]), [1, 4]);
  const y = be.f32View(
    be.rope(x, { seqLen: 1, heads: 1, headDim: 4, offset: 1, theta: 10000 }),
  );
  const want = [Math.cos(1), Math.cos(0.01), Math.sin(1), Math.sin(0.01)];
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(y[i] - want[i]) < 1e-6, `${i}: ${y[i]} vs ${want[i]}`);
  }
});

Deno.test("rope() rows wrap every seqLen and inverse undoes it", () => {
  const rng = new Rng(6);
  const x = rng.floats(6 * 8);
  const y = be.rope(be.fromArray(x, [6, 8]), dims);
  const yv = be.f32View(y);
  // row 3 (second sequence, position offset+0) equals row 0 rotated the same way
  const row0 = be.f32View(
    be.rope(be.fromArray(x.slice(24, 32), [1, 8]), { ...dims, seqLen: 1 }),
  );
  assert.deepEqual(yv.slice(24, 32), row0);
  const back = be.f32View(be.rope(y, dims, true));
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(back[i] - x[i]) < 1e-6);
});

Deno.test("rope(inverse) is the transpose: matches finite differences of rope()", () => {
  const rng = new Rng(7);
  const x = rng.floats(6 * 8), dy = rng.floats(6 * 8);
  const dx = be.f32View(be.rope(be.fromArray(dy, [6, 8]), dims, true));
  checkGradients({
    name: "rope",
    inputs: [x],
    forward: () => [be.f32View(be.rope(be.fromArray(x, [6, 8]), dims))],
    upstream: [dy],
    grads: [dx],
  });
});

Deno.test("rope() names mismatched shapes", () => {
  assert.throws(
    () => be.rope(be.zeros([6, 7]), dims),
    /rope: x \[6,7\] is not \[B·3, 2·4\]/,
  );
  assert.throws(
    () => be.rope(be.zeros([6, 6]), { ...dims, headDim: 3 }),
    /rope: headDim must be even/,
  );
});
