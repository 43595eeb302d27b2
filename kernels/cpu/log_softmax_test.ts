import assert from "node:assert/strict";
import { checkGradients } from "../_fd.ts";
import { CpuBackend } from "./backend.ts";
import { Rng } from "./_random.ts";

const be = new CpuBackend();

Deno.test("logSoftmaxGather() hand-worked: uniform logits give −log V", () => {
  const { logprobs, lse } = be.logSoftmaxGather(
    be.fromArray(new Float32Array([3, 3, 3, 0, 0, Math.log(3)]), [2, 3]),
    be.fromInts(new Int32Array([1, 2]), [2]),
  );
  const lp = be.f32View(logprobs);
  assert.ok(Math.abs(lp[0] + Math.log(3)) < 1e-6);
  // row 1: exp = [1, 1, 3] → p(2) = 3/5
  assert.ok(Math.abs(lp[1] - Math.log(0.6)) < 1e-6);
  assert.ok(Math.abs(be.f32View(lse)[0] - (3 + Math.log(3))) < 1e-6);
});

Deno.test("logSoftmaxGatherBackward() matches finite differences", () => {
  const rng = new Rng(14);
  const [n, v] = [3, 11];
  const logits = rng.floats(n * v, -4, 4), dlp = rng.floats(n);
  const targets = be.fromInts(new Int32Array([0, 10, 4]), [n]);
  const f = be.logSoftmaxGather(be.fromArray(logits, [n, v]), targets);
  const g = be.logSoftmaxGatherBackward(
    be.fromArray(dlp, [n]),
    be.fromArray(logits, [n, v]),
    targets,
    f.lse,
  );
  checkGradients({
    name: "logSoftmaxGather",
    inputs: [logits],
    forward: () => [
      be.f32View(
        be.logSoftmaxGather(be.fromArray(logits, [n, v]), targets).logprobs,
      ),
    ],
    upstream: [dlp],
    grads: [be.f32View(g)],
  });
});

Deno.test("logSoftmaxGather() rejects targets out of range and mismatched shapes", () => {
  const logits = be.zeros([2, 3]);
  assert.throws(
    () => be.logSoftmaxGather(logits, be.fromInts(new Int32Array([0, 3]), [2])),
    /targets\[1\] must be in \[0, 3\): got 3/,
  );
  assert.throws(
    () => be.logSoftmaxGather(logits, be.fromInts(new Int32Array([0]), [1])),
    /logSoftmaxGather: targets must be \[2\]: got \[1\]/,
  );
});
