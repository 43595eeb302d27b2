import assert from "node:assert/strict";
import { checkGradients } from "../_fd.ts";
import { CpuBackend } from "./backend.ts";
import { Rng } from "./_random.ts";

const be = new CpuBackend();

Deno.test("embedding() gathers rows", () => {
  const table = be.fromArray(new Float32Array([0, 1, 10, 11, 20, 21]), [3, 2]);
  const out = be.embedding(table, be.fromInts(new Int32Array([2, 0, 2]), [3]));
  assert.deepEqual(out.shape, [3, 2]);
  assert.deepEqual([...be.f32View(out)], [20, 21, 0, 1, 20, 21]);
});

Deno.test("embeddingBackward() scatter-adds and matches finite differences", () => {
  const rng = new Rng(13);
  const table = rng.floats(5 * 3), dy = rng.floats(4 * 3);
  const ids = be.fromInts(new Int32Array([1, 4, 1, 0]), [4]);
  const dt = be.f32View(be.embeddingBackward(be.fromArray(dy, [4, 3]), ids, 5));
  // row 1 gets dy rows 0 and 2; rows 2, 3 get nothing
  assert.ok(Math.abs(dt[3] - (dy[0] + dy[6])) < 1e-7);
  assert.deepEqual([...dt.slice(6, 12)], [0, 0, 0, 0, 0, 0]);
  checkGradients({
    name: "embedding",
    inputs: [table],
    forward: () => [be.f32View(be.embedding(be.fromArray(table, [5, 3]), ids))],
    upstream: [dy],
    grads: [dt],
  });
});

Deno.test("embedding() rejects ids out of range", () => {
  const table = be.zeros([3, 2]);
  assert.throws(
    () => be.embedding(table, be.fromInts(new Int32Array([3]), [1])),
    /embedding: ids\[0\] must be in \[0, 3\): got 3/,
  );
  assert.throws(
    () => be.embedding(table, be.zeros([1])),
    /embedding: ids must be i32/,
  );
});
