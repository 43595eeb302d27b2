import assert from "node:assert/strict";
import { checkGradients } from "../_fd.ts";
import { CpuBackend } from "./backend.ts";
import { Rng } from "./_random.ts";

const be = new CpuBackend();

Deno.test("swiglu() hand-worked: silu(0) = 0, silu(1)·2 = 2σ(1)", () => {
  const h = be.swiglu(
    be.fromArray(new Float32Array([0, 1]), [1, 2]),
    be.fromArray(new Float32Array([5, 2]), [1, 2]),
  );
  const got = be.f32View(h);
  assert.equal(got[0], 0);
  assert.ok(Math.abs(got[1] - 2 / (1 + Math.exp(-1))) < 1e-6);
});

Deno.test("swigluBackward() matches finite differences", () => {
  const rng = new Rng(12);
  const gate = rng.floats(24, -3, 3), up = rng.floats(24), dh = rng.floats(24);
  const g = be.swigluBackward(
    be.fromArray(dh, [4, 6]),
    be.fromArray(gate, [4, 6]),
    be.fromArray(up, [4, 6]),
  );
  checkGradients({
    name: "swiglu",
    inputs: [gate, up],
    forward: () => [
      be.f32View(
        be.swiglu(be.fromArray(gate, [4, 6]), be.fromArray(up, [4, 6])),
      ),
    ],
    upstream: [dh],
    grads: [be.f32View(g.dgate), be.f32View(g.dup)],
  });
  assert.throws(
    () => be.swiglu(be.zeros([2, 3]), be.zeros([3, 2])),
    /swiglu: up \[3,2\] must have the shape of gate \[2,3\]/,
  );
});
