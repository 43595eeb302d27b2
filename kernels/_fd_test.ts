import assert from "node:assert/strict";
import { checkGradients, GradientCheckError } from "./_fd.ts";

Deno.test("checkGradients() accepts a right gradient and rejects a wrong one", () => {
  const x = new Float32Array([0.5, -1, 2]);
  const u = new Float32Array([1, 2, 3]);
  const forward = () => [x.map((v) => v * v * v)];
  const right = x.map((v, i) => 3 * u[i] * v * v);
  assert.ok(
    checkGradients({
      name: "cube",
      inputs: [x],
      forward,
      upstream: [u],
      grads: [right],
    }) < 1e-2,
  );
  const wrong = right.map((g, i) => (i === 1 ? g * 1.05 : g));
  assert.throws(
    () =>
      checkGradients({
        name: "cube",
        inputs: [x],
        forward,
        upstream: [u],
        grads: [wrong],
      }),
    (e: unknown) =>
      e instanceof GradientCheckError &&
      /cube: d\/d input 0\[1\]/.test(e.message),
  );
  assert.deepEqual([...x], [0.5, -1, 2]); // inputs restored
});
