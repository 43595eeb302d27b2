import assert from "node:assert/strict";
import { CpuBackend } from "./backend.ts";
import { backendConformance } from "../_conformance.ts";

const be = new CpuBackend();

Deno.test("CpuBackend memory: fromArray copies, read returns a copy, free forbids reuse", async () => {
  const src = new Float32Array([1, 2, 3, 4, 5, 6]);
  const t = be.fromArray(src, [2, 3]);
  assert.deepEqual([t.shape, t.dtype, t.size], [[2, 3], "f32", 6]);
  src[0] = 99;
  const r = await be.read(t);
  assert.deepEqual([...r], [1, 2, 3, 4, 5, 6]);
  r[1] = 42;
  assert.equal((await be.read(t))[1], 2);
  const ids = be.fromInts(new Int32Array([7, -1]), [2]);
  assert.deepEqual([...(await be.readInts(ids))], [7, -1]);
  await assert.rejects(
    () => be.read(ids),
    /read: t must be f32: got i32 \[2\]/,
  );
  assert.deepEqual([...(await be.read(be.zeros([3])))], [0, 0, 0]);
  be.free(t);
  await assert.rejects(() => be.read(t), /read: t \[2,3\] was freed/);
  assert.throws(
    () => be.fromArray(new Float32Array(5), [2, 3]),
    /data length 5 does not match shape \[2,3\]/,
  );
  await be.sync();
});

Deno.test("CpuBackend axpy, add, mul, sumOfSquares", async () => {
  const a = be.fromArray(new Float32Array([1, 2]), [2]);
  const b = be.fromArray(new Float32Array([10, 20]), [2]);
  assert.deepEqual([...(await be.read(be.add(a, b)))], [11, 22]);
  assert.deepEqual([...(await be.read(be.mul(a, b)))], [10, 40]);
  be.axpy(a, b, 0.5);
  assert.deepEqual([...(await be.read(a))], [6, 12]);
  assert.equal(await be.sumOfSquares([a, b]), 36 + 144 + 100 + 400);
  assert.throws(
    () => be.add(a, be.zeros([3])),
    /add: b \[3\] must have the shape of a \[2\]/,
  );
});

Deno.test("CpuBackend writeRows appends rows of each sequence", async () => {
  // cache: 2 sequences × 3 rows × 2 wide; write 1 row per sequence at row 2
  const cache = be.zeros([6, 2]);
  be.writeRows(cache, be.fromArray(new Float32Array([1, 2, 3, 4]), [2, 2]), {
    batch: 2,
    rows: 3,
    start: 2,
  });
  assert.deepEqual([...(await be.read(cache))], [
    0,
    0,
    0,
    0,
    1,
    2,
    0,
    0,
    0,
    0,
    3,
    4,
  ]);
  assert.throws(
    () =>
      be.writeRows(cache, be.zeros([4, 2]), { batch: 2, rows: 3, start: 2 }),
    /writeRows: cannot write src \[4,2\] at row 2 of cache \[6,2\]/,
  );
});

// The oracle against itself: exercises the harness, and catches any
// nondeterminism (every comparison must then be exact).
backendConformance("cpu", () => new CpuBackend(), { abs: 0, rel: 0 });
