import assert from "node:assert/strict";
import type { AttentionDims } from "../backend.ts";
import { checkGradients } from "../_fd.ts";
import { CpuBackend } from "./backend.ts";
import { Rng } from "./_random.ts";

const be = new CpuBackend();

Deno.test("attention() with one key returns v", () => {
  const rng = new Rng(8);
  const q = rng.floats(4), k = rng.floats(4), v = rng.floats(4);
  const dims = {
    batch: 1,
    tq: 1,
    tk: 1,
    heads: 2,
    kvHeads: 1,
    headDim: 2,
    kvRows: 1,
  };
  // k, v have one kv head [1, 2]; both query heads read it
  const { out, lse } = be.attention(
    be.fromArray(q, [1, 4]),
    be.fromArray(k.slice(0, 2), [1, 2]),
    be.fromArray(v.slice(0, 2), [1, 2]),
    dims,
  );
  const o = be.f32View(out);
  assert.deepEqual([...o], [v[0], v[1], v[0], v[1]]);
  // lse of a single score s is s itself
  const s = (q[0] * k[0] + q[1] * k[1]) / Math.sqrt(2);
  assert.ok(Math.abs(be.f32View(lse)[0] - s) < 1e-6);
});

Deno.test("attention() is causal: hand-worked two keys", () => {
  // D = 1, q = [0, 0]: equal scores, so row 0 sees v0, row 1 averages v0 and v1
  const dims = { batch: 1, tq: 2, tk: 2, heads: 1, kvHeads: 1, headDim: 1 };
  const { out } = be.attention(
    be.fromArray(new Float32Array([0, 0]), [2, 1]),
    be.fromArray(new Float32Array([1, 2]), [2, 1]),
    be.fromArray(new Float32Array([10, 20]), [2, 1]),
    dims,
  );
  assert.deepEqual([...be.f32View(out)], [10, 15]);
});

function fdCase(dims: AttentionDims, seed: number): void {
  const rng = new Rng(seed);
  const s = dims.kvRows ?? dims.tk;
  const qs = [dims.batch * dims.tq, dims.heads * dims.headDim];
  const ks = [dims.batch * s, dims.kvHeads * dims.headDim];
  const q = rng.floats(qs[0] * qs[1]),
    k = rng.floats(ks[0] * ks[1]),
    v = rng.floats(ks[0] * ks[1]);
  const dout = rng.floats(q.length);
  const run = () =>
    be.attention(
      be.fromArray(q, qs),
      be.fromArray(k, ks),
      be.fromArray(v, ks),
      dims,
    );
  const f = run();
  const g = be.attentionBackward(
    be.fromArray(dout, qs),
    be.fromArray(q, qs),
    be.fromArray(k, ks),
    be.fromArray(v, ks),
    f.out,
    f.lse,
    dims,
  );
  checkGradients({
    name: `attention ${JSON.stringify(dims)}`,
    inputs: [q, k, v],
    forward: () => [be.f32View(run().out)],
    upstream: [dout],
    grads: [be.f32View(g.dq), be.f32View(g.dk), be.f32View(g.dv)],
  }, { maxProbes: 200 });
}

Deno.test("attentionBackward() matches finite differences (MHA)", () => {
  fdCase({ batch: 2, tq: 3, tk: 3, heads: 2, kvHeads: 2, headDim: 4 }, 9);
});

Deno.test("attentionBackward() matches finite differences (GQA, Tq < Tk, kvRows > Tk)", () => {
  fdCase({
    batch: 2,
    tq: 2,
    tk: 4,
    kvRows: 5,
    heads: 4,
    kvHeads: 2,
    headDim: 3,
  }, 10);
});

Deno.test("attention() query rows see keys up to Tk − Tq + i only", () => {
  const rng = new Rng(11);
  const dims = {
    batch: 1,
    tq: 2,
    tk: 4,
    kvRows: 6,
    heads: 1,
    kvHeads: 1,
    headDim: 2,
  };
  const q = rng.floats(4), k = rng.floats(12), v = rng.floats(12);
  const base = be.f32View(
    be.attention(
      be.fromArray(q, [2, 2]),
      be.fromArray(k, [6, 2]),
      be.fromArray(v, [6, 2]),
      dims,
    ).out,
  );
  // changing key/value rows 4, 5 (beyond Tk) changes nothing; changing row 3 changes only query row 1
  const k2 = k.slice(), v2 = v.slice();
  k2.fill(9, 8);
  v2.fill(9, 8);
  const same = be.f32View(
    be.attention(
      be.fromArray(q, [2, 2]),
      be.fromArray(k2, [6, 2]),
      be.fromArray(v2, [6, 2]),
      dims,
    ).out,
  );
  assert.deepEqual(same, base);
  v2[6] += 1;
  const moved = be.f32View(
    be.attention(
      be.fromArray(q, [2, 2]),
      be.fromArray(k2, [6, 2]),
      be.fromArray(v2, [6, 2]),
      dims,
    ).out,
  );
  assert.deepEqual(moved.slice(0, 2), base.slice(0, 2));
  assert.notDeepEqual(moved.slice(2), base.slice(2));
});

Deno.test("attention() names mismatched shapes", () => {
  const dims = { batch: 1, tq: 2, tk: 2, heads: 3, kvHeads: 2, headDim: 2 };
  assert.throws(
    () =>
      be.attention(be.zeros([2, 6]), be.zeros([2, 4]), be.zeros([2, 4]), dims),
    /heads \(3\) must be a multiple of kvHeads \(2\)/,
  );
  assert.throws(
    () =>
      be.attention(be.zeros([2, 6]), be.zeros([3, 4]), be.zeros([2, 4]), {
        ...dims,
        heads: 2,
        headDim: 3,
        kvHeads: 2,
      }),
    /attention: k must be \[2,6\]: got \[3,4\]/,
  );
});
