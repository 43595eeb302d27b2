import assert from "node:assert/strict";
import { checkGradients } from "../_fd.ts";
import { CpuBackend } from "./backend.ts";
import { Rng } from "./_random.ts";

const be = new CpuBackend();

Deno.test("linear() hand-worked with and without LoRA", () => {
  const x = be.fromArray(new Float32Array([1, 2]), [1, 2]);
  const w = be.fromArray(new Float32Array([1, 0, 0, 1, 1, 1]), [3, 2]); // y = [1, 2, 3]
  assert.deepEqual([...be.f32View(be.linear(x, w).y)], [1, 2, 3]);
  const a = be.fromArray(new Float32Array([1, 1]), [1, 2]); // x aᵀ = 3
  const b = be.fromArray(new Float32Array([1, 0, -1]), [3, 1]);
  const { y, xa } = be.linear(x, w, { a, b, scale: 2 });
  assert.deepEqual([...be.f32View(xa!)], [3]);
  assert.deepEqual([...be.f32View(y)], [1 + 6, 2, 3 - 6]);
});

Deno.test("linearBackward() dx, da, db match finite differences", () => {
  const rng = new Rng(3);
  const [n, inF, outF, r, scale] = [5, 7, 6, 3, 1.5];
  const x = rng.floats(n * inF), w = rng.floats(outF * inF);
  const a = rng.floats(r * inF), b = rng.floats(outF * r);
  const dy = rng.floats(n * outF);
  const T = (d: Float32Array, s: number[]) => be.fromArray(d, s);
  const lora = () => ({ a: T(a, [r, inF]), b: T(b, [outF, r]), scale });
  const fwd = be.linear(T(x, [n, inF]), T(w, [outF, inF]), lora());
  for (const xa of [fwd.xa, undefined]) {
    const g = be.linearBackward(
      T(dy, [n, outF]),
      T(x, [n, inF]),
      T(w, [outF, inF]),
      lora(),
      xa,
    );
    checkGradients({
      name: "linear+lora",
      inputs: [x, a, b],
      forward: () => [
        be.f32View(be.linear(T(x, [n, inF]), T(w, [outF, inF]), lora()).y),
      ],
      upstream: [dy],
      grads: [be.f32View(g.dx), be.f32View(g.da!), be.f32View(g.db!)],
    });
  }
  const g0 = be.linearBackward(
    T(dy, [n, outF]),
    T(x, [n, inF]),
    T(w, [outF, inF]),
  );
  assert.equal(g0.da, undefined);
  checkGradients({
    name: "linear",
    inputs: [x],
    forward: () => [be.f32View(be.linear(T(x, [n, inF]), T(w, [outF, inF])).y)],
    upstream: [dy],
    grads: [be.f32View(g0.dx)],
  });
});

Deno.test("linear() names mismatched shapes", () => {
  assert.throws(
    () => be.linear(be.zeros([2, 3]), be.zeros([4, 5])),
    /linear: x \[2,3\] and w \[4,5\] differ/,
  );
  assert.throws(
    () =>
      be.linear(be.zeros([2, 3]), be.zeros([4, 3]), {
        a: be.zeros([2, 3]),
        b: be.zeros([4, 3]),
        scale: 1,
      }),
    /linear: lora.b must be \[4,2\]: got \[4,3\]/,
  );
  assert.throws(
    () =>
      be.linearBackward(be.zeros([2, 5]), be.zeros([2, 3]), be.zeros([4, 3])),
    /linearBackward: dy must be \[2,4\]: got \[2,5\]/,
  );
});
