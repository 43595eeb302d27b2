import assert from "node:assert/strict";
import { CpuBackend } from "./backend.ts";
import { Rng } from "./_random.ts";
import { ShapeError } from "./shape_error.ts";

const be = new CpuBackend();

/** Naive triple loop: out[i,j] = Σ_p op(a)[i,p] op(b)[p,j]. */
function naive(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  ta: boolean,
  tb: boolean,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        s += (ta ? a[p * m + i] : a[i * k + p]) *
          (tb ? b[j * k + p] : b[p * n + j]);
      }
      out[i * n + j] = s;
    }
  }
  return out;
}

Deno.test("gemm() hand-worked 2×3 · 3×2 in all four transpose layouts", () => {
  // [[1,2,3],[4,5,6]] · [[7,8],[9,10],[11,12]] = [[58,64],[139,154]]
  const a = [1, 2, 3, 4, 5, 6];
  const at = [1, 4, 2, 5, 3, 6]; // stored [3,2]
  const b = [7, 8, 9, 10, 11, 12];
  const bt = [7, 9, 11, 8, 10, 12]; // stored [2,3]
  const want = [58, 64, 139, 154];
  for (
    const [ta, tb] of [[false, false], [true, false], [false, true], [
      true,
      true,
    ]]
  ) {
    const A = be.fromArray(new Float32Array(ta ? at : a), ta ? [3, 2] : [2, 3]);
    const B = be.fromArray(new Float32Array(tb ? bt : b), tb ? [2, 3] : [3, 2]);
    const c = be.gemm(A, B, { transA: ta, transB: tb });
    assert.deepEqual(c.shape, [2, 2]);
    assert.deepEqual([...be.f32View(c)], want, `transA ${ta} transB ${tb}`);
  }
});

Deno.test("gemm() applies alpha and beta into out", () => {
  const a = be.fromArray(new Float32Array([1, 2, 3, 4]), [2, 2]);
  const out = be.fromArray(new Float32Array([1, 1, 1, 1]), [2, 2]);
  const r = be.gemm(a, a, { alpha: 2, beta: 3, out });
  assert.equal(r, out);
  // 2·[[7,10],[15,22]] + 3
  assert.deepEqual([...be.f32View(out)], [17, 23, 33, 47]);
  // beta 0 never reads out: NaN in it does not leak
  const nan = be.fromArray(new Float32Array(4).fill(NaN), [2, 2]);
  be.gemm(a, a, { out: nan });
  assert.deepEqual([...be.f32View(nan)], [7, 10, 15, 22]);
});

Deno.test("gemm() matches a naive product at odd shapes and one row", () => {
  const rng = new Rng(1);
  for (
    const [m, n, k] of [[37, 53, 29], [1, 300, 17], [5, 1, 9], [3, 260, 7]]
  ) {
    for (
      const [ta, tb] of [[false, false], [true, false], [false, true], [
        true,
        true,
      ]]
    ) {
      const a = rng.floats(m * k);
      const b = rng.floats(k * n);
      const c = be.gemm(
        be.fromArray(a, ta ? [k, m] : [m, k]),
        be.fromArray(b, tb ? [n, k] : [k, n]),
        {
          transA: ta,
          transB: tb,
        },
      );
      const want = naive(a, b, m, n, k, ta, tb);
      const got = be.f32View(c);
      for (let i = 0; i < want.length; i++) {
        assert.ok(
          Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])),
          `${m}x${n}x${k} ${ta} ${tb} @${i}`,
        );
      }
    }
  }
});

Deno.test("gemm() is bit-identical run to run", () => {
  const rng = new Rng(2);
  const a = be.fromArray(rng.floats(40 * 70), [40, 70]);
  const b = be.fromArray(rng.floats(70 * 33), [33, 70]);
  const c1 = be.f32View(be.gemm(a, b, { transB: true }));
  const c2 = be.f32View(be.gemm(a, b, { transB: true }));
  assert.deepEqual(c1, c2);
});

Deno.test("gemm() names the mismatched shapes", () => {
  const a = be.zeros([3, 4]);
  const b = be.zeros([5, 2]);
  assert.throws(
    () => be.gemm(a, b),
    (e: unknown) =>
      e instanceof ShapeError &&
      /gemm: inner dimensions differ: op\(a\) is \[3,4\].*op\(b\) is \[5,2\]/
        .test(e.message),
  );
  assert.throws(
    () => be.gemm(a, be.zeros([4, 2]), { out: be.zeros([2, 2]) }),
    /gemm: out must be \[3,2\]: got \[2,2\]/,
  );
  assert.throws(
    () => be.gemm(be.zeros([3]), b),
    /gemm: a must be 2-D: got \[3\]/,
  );
});
