import assert from "node:assert/strict";
import { CpuBackend } from "../kernels/cpu/backend.ts";
import { Rng } from "../kernels/cpu/_random.ts";
import { TEST_BACKENDS } from "../tests/_backends.ts";
import { topkLogprobs, topkRow } from "./topk_logprobs.ts";

Deno.test("topkRow: the k largest logit − lse, descending, ties by id ascending", () => {
  const row = new Float32Array([1, 3, 2, 3, -1, 2]);
  assert.deepEqual(topkRow(row, 0, 4), [[1, 3], [3, 3], [2, 2], [5, 2]]);
  assert.deepEqual(topkRow(row, 0, 1), [[1, 3]]);
  assert.deepEqual(topkRow(row, 1, 6).map(([id]) => id), [1, 3, 2, 5, 0, 4]);
  assert.deepEqual(topkRow(row, 1, 2), [[1, 2], [3, 2]]);
});

Deno.test("topkLogprobs reads rows in chunks and matches a full log-softmax, on every backend", async () => {
  const n = 7, v = 300, k = 5;
  const rng = new Rng(77);
  const data = rng.floats(n * v, -8, 8);
  // full log-softmax in float64
  const want: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const r = data.subarray(i * v, (i + 1) * v);
    const max = Math.max(...r);
    const lse = max + Math.log(r.reduce((s, x) => s + Math.exp(x - max), 0));
    want.push(Float64Array.from(r, (x) => x - lse));
  }
  // targets: the third likeliest token of each row, so that it is in the top k
  const third = want.map((w) =>
    [...w.keys()].sort((a, b) => w[b] - w[a] || a - b)[2]
  );
  for (const [name, open] of TEST_BACKENDS) {
    const be = await open();
    if (!be) continue;
    const logits = be.fromArray(data, [n, v]);
    const { logprobs, lse } = be.logSoftmaxGather(
      logits,
      be.fromInts(Int32Array.from(third), [n]),
    );
    // 2 rows a read: 4 reads
    const got = await topkLogprobs(be, logits, lse, k, 2 * v * 4);
    assert.equal(got.length, n, name);
    for (let i = 0; i < n; i++) {
      const order = [...want[i].keys()].sort((a, b) =>
        want[i][b] - want[i][a] || a - b
      );
      assert.deepEqual(got[i].map(([id]) => id), order.slice(0, k), name);
      for (const [id, lp] of got[i]) {
        assert.ok(Math.abs(lp - want[i][id]) < 1e-5, `${name} ${i} ${id}`);
      }
    }
    // the gathered logprob of a token in the top k is the same number
    const gathered = await be.read(logprobs);
    for (let i = 0; i < n; i++) {
      const [id, lp] = got[i][2];
      assert.equal(id, third[i]);
      assert.ok(
        Math.abs(lp - gathered[i]) <= 1e-6,
        `${name} row ${i}: ${lp} vs ${gathered[i]}`,
      );
    }
    for (const t of [logits, logprobs, lse]) be.free(t);
  }
});

Deno.test("topkLogprobs refuses k outside [1, V]", async () => {
  const be = new CpuBackend();
  const logits = be.zeros([2, 3]);
  const lse = be.zeros([2]);
  await assert.rejects(() => topkLogprobs(be, logits, lse, 0), /\[1, 3\]/);
  await assert.rejects(() => topkLogprobs(be, logits, lse, 4), /\[1, 3\]/);
});
