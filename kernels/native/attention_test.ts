import assert from "node:assert/strict";
import type { AttentionDims, Backend } from "../backend.ts";
import { Rng } from "../cpu/_random.ts";
import { CpuBackend } from "../cpu/backend.ts";
import { ShapeError } from "../cpu/shape_error.ts";
import { QUERY_BLOCK } from "./attention.ts";
import { nativeUnavailableReason, openNativeBackend } from "./backend.ts";
import { loadOpenBlas } from "./openblas.ts";

const native = openNativeBackend();
const ref = new CpuBackend();

/** got within abs 1e-5 + rel 1e-4 of want, element by element. */
function assertClose(label: string, got: Float32Array, want: Float32Array) {
  assert.equal(got.length, want.length, `${label}: length`);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= 1e-5 + 1e-4 * Math.abs(want[i]))) {
      assert.fail(`${label}[${i}]: got ${got[i]}, want ${want[i]}`);
    }
  }
}

function inputs(be: Backend, dims: AttentionDims, seed: number) {
  const rng = new Rng(seed);
  const s = dims.kvRows ?? dims.tk;
  const qs = [dims.batch * dims.tq, dims.heads * dims.headDim];
  const ks = [dims.batch * s, dims.kvHeads * dims.headDim];
  return {
    q: be.fromArray(rng.floats(qs[0] * qs[1], -2, 2), qs),
    k: be.fromArray(rng.floats(ks[0] * ks[1], -2, 2), ks),
    v: be.fromArray(rng.floats(ks[0] * ks[1]), ks),
    dout: be.fromArray(rng.floats(qs[0] * qs[1]), qs),
  };
}

// Row blocks (Tq > QUERY_BLOCK, ragged last block), Tq < Tk, kvRows > Tk,
// GQA groups, and decode (Tq = 1, one product per kv group).
const cases: AttentionDims[] = [
  {
    batch: 2,
    tq: QUERY_BLOCK * 2 + 7,
    tk: QUERY_BLOCK * 2 + 7,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
  },
  {
    batch: 2,
    tq: QUERY_BLOCK + 3,
    tk: QUERY_BLOCK + 20,
    kvRows: QUERY_BLOCK + 25,
    heads: 6,
    kvHeads: 3,
    headDim: 8,
  },
  { batch: 3, tq: 1, tk: 40, kvRows: 45, heads: 6, kvHeads: 2, headDim: 12 },
  { batch: 1, tq: 1, tk: 1, heads: 2, kvHeads: 2, headDim: 4 },
];

if (native === null) {
  console.log(`skipping native attention tests: ${nativeUnavailableReason()}`);
  Deno.test({
    name: "native attention tests (skipped: OpenBLAS unavailable)",
    // Under BIOS_REQUIRE_ALL=1 a missing OpenBLAS is a failure, not a skip.
    ignore: Deno.env.get("BIOS_REQUIRE_ALL") !== "1",
    fn() {
      throw new Error(
        "OpenBLAS unavailable (apt-get install libopenblas0-pthread)",
      );
    },
  });
} else {
  Deno.test("native attention and its backward match the CPU reference across row blocks, caches and decode", async () => {
    for (const [n, dims] of cases.entries()) {
      const label = `case ${n} ${JSON.stringify(dims)}`;
      const g = inputs(native, dims, 40 + n);
      const r = inputs(ref, dims, 40 + n);
      const go = native.attention(g.q, g.k, g.v, dims);
      const ro = ref.attention(r.q, r.k, r.v, dims);
      assertClose(
        `${label} out`,
        await native.read(go.out),
        await ref.read(ro.out),
      );
      assertClose(
        `${label} lse`,
        await native.read(go.lse),
        await ref.read(ro.lse),
      );
      const gb = native.attentionBackward(
        g.dout,
        g.q,
        g.k,
        g.v,
        go.out,
        go.lse,
        dims,
      );
      const rb = ref.attentionBackward(
        r.dout,
        r.q,
        r.k,
        r.v,
        ro.out,
        ro.lse,
        dims,
      );
      assertClose(
        `${label} dq`,
        await native.read(gb.dq),
        await ref.read(rb.dq),
      );
      assertClose(
        `${label} dk`,
        await native.read(gb.dk),
        await ref.read(rb.dk),
      );
      assertClose(
        `${label} dv`,
        await native.read(gb.dv),
        await ref.read(rb.dv),
      );
    }
  });

  Deno.test("native attentionBackward is bit-identical on rerun and leaves cache rows past Tk at zero", async () => {
    const dims = cases[1];
    const kvRows = dims.kvRows!;
    const g = inputs(native, dims, 7);
    const { out, lse } = native.attention(g.q, g.k, g.v, dims);
    const run = () =>
      native.attentionBackward(g.dout, g.q, g.k, g.v, out, lse, dims);
    const a = run();
    const b = run();
    for (const key of ["dq", "dk", "dv"] as const) {
      assert.deepEqual(
        await native.read(a[key]),
        await native.read(b[key]),
        key,
      );
    }
    const width = dims.kvHeads * dims.headDim;
    for (const key of ["dk", "dv"] as const) {
      const x = await native.read(a[key]);
      for (let s = 0; s < dims.batch; s++) {
        const tail = x.subarray(
          (s * kvRows + dims.tk) * width,
          (s + 1) * kvRows * width,
        );
        assert.ok(
          tail.every((y) => y === 0),
          `${key} rows ≥ tk of sequence ${s}`,
        );
        const used = x.subarray(
          s * kvRows * width,
          (s * kvRows + dims.tk) * width,
        );
        assert.ok(
          used.some((y) => y !== 0),
          `${key} rows < tk of sequence ${s}`,
        );
      }
    }
  });

  Deno.test("native attention rejects inconsistent dims with a ShapeError naming the field", () => {
    const dims: AttentionDims = {
      batch: 1,
      tq: 4,
      tk: 4,
      heads: 2,
      kvHeads: 1,
      headDim: 8,
    };
    const { q, k, v, dout } = inputs(native, dims, 3);
    assert.throws(
      () => native.attention(q, k, v, { ...dims, kvHeads: 3 }),
      (e: unknown) =>
        e instanceof ShapeError &&
        /heads \(2\) must be a multiple of kvHeads \(3\)/.test(e.message),
    );
    assert.throws(
      () => native.attention(q, k, v, { ...dims, tq: 5 }),
      (e: unknown) =>
        e instanceof ShapeError && /tq ≤ tk ≤ kvRows/.test(e.message),
    );
    assert.throws(
      () => native.attention(q, k, v, { ...dims, headDim: 0 }),
      (e: unknown) =>
        e instanceof ShapeError &&
        /headDim must be a positive integer: got 0/.test(e.message),
    );
    assert.throws(
      () => native.attention(q, k, v, { ...dims, kvRows: 6 }),
      (e: unknown) =>
        e instanceof ShapeError &&
        /k must be \[6,8\]: got \[4,8\]/.test(e.message),
    );
    const ids = native.fromInts(new Int32Array(4 * 16), [4, 16]);
    assert.throws(
      () => native.attention(ids, k, v, dims),
      (e: unknown) =>
        e instanceof ShapeError &&
        /attention: q must be f32: got i32 \[4,16\]/.test(e.message),
    );
    const { out, lse } = native.attention(q, k, v, dims);
    assert.throws(
      () => native.attentionBackward(dout, q, k, v, out, q, dims),
      (e: unknown) =>
        e instanceof ShapeError &&
        /lse must be \[8\]: got \[4,16\]/.test(e.message),
    );
    assert.throws(
      () => native.attentionBackward(lse, q, k, v, out, lse, dims),
      (e: unknown) =>
        e instanceof ShapeError && /dout must be \[4,16\]/.test(e.message),
    );
  });

  Deno.test("gemmStrided multiplies sub-matrices in place and refuses ones that leave their array", () => {
    const got = loadOpenBlas();
    assert.ok(got.ok);
    const gemm = got.blas.gemmStrided;
    // a: rows 1..2, cols 1..3 of a 4×5 array; b: the 3×2 block at row 0, col 2 of a 3×4 array
    const a = Float32Array.from({ length: 20 }, (_, i) => i);
    const b = Float32Array.from({ length: 12 }, (_, i) => 10 - i);
    const c = new Float32Array(2 * 6).fill(7);
    gemm(false, false, 2, 2, 3, 1, a, 6, 5, b, 2, 4, 1, c, 1, 6);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 2; j++) {
        let want = 7;
        for (let p = 0; p < 3; p++) want += a[6 + i * 5 + p] * b[2 + p * 4 + j];
        assert.equal(c[1 + i * 6 + j], want, `c[${i},${j}]`);
      }
    }
    assert.equal(c[0], 7);
    assert.equal(c[3], 7);
    assert.throws(
      () => gemm(false, false, 2, 2, 3, 1, a, 16, 5, b, 2, 4, 0, c, 1, 6),
      /sgemm: a \[2,3\] at offset 16 with leading dimension 5 does not fit in 20 floats/,
    );
    assert.throws(
      () => gemm(false, true, 2, 2, 3, 1, a, 0, 2, b, 0, 4, 0, c, 0, 6),
      /sgemm: a \[2,3\] at offset 0 with leading dimension 2/,
    );
  });
}
