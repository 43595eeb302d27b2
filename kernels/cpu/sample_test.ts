import assert from "node:assert/strict";
import { CpuBackend } from "./backend.ts";
import { Rng } from "./_random.ts";

const be = new CpuBackend();

function draw(
  logits: Float32Array,
  v: number,
  us: number[],
  opts: { temperature: number; topK: number; topP: number; minP?: number },
) {
  const b = us.length;
  const rows = new Float32Array(b * v);
  for (let r = 0; r < b; r++) rows.set(logits, r * v);
  const { tokens, logprobs } = be.sample(
    be.fromArray(rows, [b, v]),
    be.fromArray(new Float32Array(us), [b]),
    opts,
  );
  return {
    tokens: [...be.i32View(tokens)],
    logprobs: [...be.f32View(logprobs)],
  };
}

Deno.test("sample() greedy, top-k 1 and tiny top-p all give the argmax", () => {
  const logits = new Float32Array([0.1, 2, -1, 2.5, 0.3]);
  const us = [0, 0.3, 0.99];
  const lse = Math.log(logits.reduce((s, x) => s + Math.exp(x), 0));
  const greedy = draw(logits, 5, us, { temperature: 0, topK: -1, topP: 1 });
  assert.deepEqual(greedy.tokens, [3, 3, 3]);
  for (const lp of greedy.logprobs) {
    assert.ok(Math.abs(lp - (2.5 - lse)) < 1e-6);
  }
  const k1 = draw(logits, 5, us, { temperature: 0.7, topK: 1, topP: 1 });
  assert.deepEqual(k1.tokens, [3, 3, 3]);
  assert.deepEqual(k1.logprobs, [0, 0, 0]);
  assert.deepEqual(
    draw(logits, 5, us, { temperature: 1.3, topK: -1, topP: 1e-6 }).tokens,
    [3, 3, 3],
  );
});

Deno.test("sample() walks tokens by probability descending, ties by id", () => {
  // p = [0.25, 0.25, 0.5] at temperature 1: order 2, 0, 1
  const logits = new Float32Array([0, 0, Math.log(2)]);
  const t = draw(logits, 3, [0.1, 0.49, 0.51, 0.74, 0.76, 0.99], {
    temperature: 1,
    topK: -1,
    topP: 1,
  });
  assert.deepEqual(t.tokens, [2, 2, 0, 0, 1, 1]);
  assert.ok(Math.abs(t.logprobs[0] - Math.log(0.5)) < 1e-6);
  assert.ok(Math.abs(t.logprobs[2] - Math.log(0.25)) < 1e-6);
  // top-k 2 keeps {2, 0}: p = [2/3, 1/3]
  const k2 = draw(logits, 3, [0.6, 0.7], { temperature: 1, topK: 2, topP: 1 });
  assert.deepEqual(k2.tokens, [2, 0]);
  assert.ok(Math.abs(k2.logprobs[1] - Math.log(1 / 3)) < 1e-6);
  // top-p 0.6 keeps {2, 0} (0.5 < 0.6 ≤ 0.75)
  assert.deepEqual(
    draw(logits, 3, [0.99], { temperature: 1, topK: -1, topP: 0.6 }).tokens,
    [0],
  );
});

Deno.test("sample() min-p keeps tokens with probability ≥ minP · the max's, after top-k and top-p", () => {
  // p ∝ [1, 2, 4, 8] at temperature 1: order 3, 2, 1, 0; e = p / p_max = [1/8, 1/4, 1/2, 1]
  const logits = new Float32Array([0, 1, 2, 3].map((x) => x * Math.log(2)));
  const base = { temperature: 1, topK: -1, topP: 1 };
  // minP 0.2 keeps {3, 2, 1} (e ≥ 1/4): p = [8, 4, 2] / 14
  const m = draw(logits, 4, [0.5, 0.84, 0.86, 0.99], { ...base, minP: 0.2 });
  assert.deepEqual(m.tokens, [3, 2, 1, 1]);
  assert.ok(Math.abs(m.logprobs[0] - Math.log(8 / 14)) < 1e-6);
  assert.ok(Math.abs(m.logprobs[2] - Math.log(2 / 14)) < 1e-6);
  // minP 0 is off; minP 1 keeps the max alone
  assert.deepEqual(
    draw(logits, 4, [0.99], { ...base, minP: 0 }).tokens,
    draw(logits, 4, [0.99], base).tokens,
  );
  const one = draw(logits, 4, [0, 0.5, 0.99], { ...base, minP: 1 });
  assert.deepEqual(one.tokens, [3, 3, 3]);
  assert.deepEqual(one.logprobs, [0, 0, 0]);
  // after temperature: at 2, e = [0.354, 0.5, 0.707, 1]; minP 0.4 keeps {3, 2, 1}
  assert.deepEqual(
    draw(logits, 4, [0.999], { ...base, temperature: 2, minP: 0.4 }).tokens,
    [1],
  );
  // after top-k: top-k 2 keeps {3, 2}; minP 0.2 cuts nothing more
  assert.deepEqual(
    draw(logits, 4, [0.99], { ...base, topK: 2, minP: 0.2 }).tokens,
    [2],
  );
});

Deno.test("sample() draw frequencies match softmax(logits / temperature)", () => {
  const rng = new Rng(15);
  const v = 6;
  const logits = rng.floats(v, -2, 2);
  const temperature = 0.8;
  const n = 20000;
  const rows = new Float32Array(n * v);
  for (let r = 0; r < n; r++) rows.set(logits, r * v);
  const us = new Float32Array(n).map(() => rng.next());
  const { tokens } = be.sample(
    be.fromArray(rows, [n, v]),
    be.fromArray(us, [n]),
    { temperature, topK: -1, topP: 1 },
  );
  const counts = new Array(v).fill(0);
  for (const t of be.i32View(tokens)) counts[t]++;
  const z = [...logits].map((x) => Math.exp(x / temperature));
  const sum = z.reduce((a, b) => a + b, 0);
  for (let j = 0; j < v; j++) {
    const p = z[j] / sum;
    // 5 standard deviations of a binomial frequency
    assert.ok(
      Math.abs(counts[j] / n - p) < 5 * Math.sqrt(p * (1 - p) / n),
      `token ${j}: ${counts[j] / n} vs ${p}`,
    );
  }
});

Deno.test("sample() rejects bad options and uniforms", () => {
  const l = be.zeros([1, 3]);
  const u = be.fromArray(new Float32Array([0.5]), [1]);
  assert.throws(
    () => be.sample(l, u, { temperature: -1, topK: -1, topP: 1 }),
    /temperature must be a finite number ≥ 0/,
  );
  assert.throws(
    () => be.sample(l, u, { temperature: 1, topK: -1, topP: 0 }),
    /topP must be in \(0, 1\]: got 0/,
  );
  assert.throws(
    () => be.sample(l, u, { temperature: 1, topK: -1, topP: 1, minP: 1.5 }),
    /minP must be in \[0, 1\]: got 1\.5/,
  );
  assert.throws(
    () =>
      be.sample(l, be.fromArray(new Float32Array([1]), [1]), {
        temperature: 1,
        topK: -1,
        topP: 1,
      }),
    /uniforms\[0\] must be in \[0, 1\): got 1/,
  );
  assert.throws(
    () => be.sample(l, be.zeros([2]), { temperature: 1, topK: -1, topP: 1 }),
    /sample: uniforms must be \[1\]: got \[2\]/,
  );
});

/**
 * The module's rule written plainly: ids sorted by a comparison (logit
 * descending, +0 before -0, id ascending), then top-k, top-p, min-p and the draw over
 * that order, masses summed in it in float64.
 */
function plainDraw(
  row: Float32Array,
  u: number,
  o: { temperature: number; topK: number; topP: number; minP?: number },
): { token: number; logprob: number } {
  const v = row.length;
  const max = Math.max(...row);
  const e = Array.from(row, (x) => Math.exp((x - max) / o.temperature));
  // -0 comes after +0 (the order compares f32 bits, as the kernels do).
  const neg0 = (x: number) => Object.is(x, -0) ? 1 : 0;
  const order = Array.from({ length: v }, (_, j) => j).sort((a, b) =>
    row[a] !== row[b] ? row[b] - row[a] : neg0(row[a]) - neg0(row[b]) || a - b
  );
  const k = o.topK > 0 && o.topK < v ? o.topK : v;
  let kept = k;
  let mass = 0;
  for (let x = 0; x < k; x++) mass += e[order[x]];
  if (o.topP < 1) {
    let cum = 0;
    for (let x = 0; x < k; x++) {
      cum += e[order[x]];
      if (cum >= o.topP * mass) {
        kept = x + 1;
        mass = cum;
        break;
      }
    }
  }
  if ((o.minP ?? 0) > 0) {
    let n = 1;
    while (n < kept && e[order[n]] >= o.minP!) n++;
    if (n < kept) {
      kept = n;
      mass = 0;
      for (let x = 0; x < kept; x++) mass += e[order[x]];
    }
  }
  let token = order[kept - 1], cum = 0;
  for (let x = 0; x < kept; x++) {
    cum += e[order[x]];
    if (cum > u * mass) {
      token = order[x];
      break;
    }
  }
  return { token, logprob: Math.fround(Math.log(e[token] / mass)) };
}

Deno.test("sample() draws exactly as the plain rule (a comparison sort), ties, zeros of both signs and -Infinity included", () => {
  const rng = new Rng(77);
  const opts = [
    { temperature: 1, topK: -1, topP: 1 },
    { temperature: 0.7, topK: 50, topP: 0.9 },
    { temperature: 0.9, topK: -1, topP: 0.5 },
    { temperature: 1, topK: -1, topP: 1, minP: 0.05 },
    { temperature: 0.7, topK: 5, topP: 0.9, minP: 0.1 },
  ];
  for (let trial = 0; trial < 60; trial++) {
    const v = [2, 53, 300, 4096][trial % 4];
    const row = new Float32Array(v).map(() => {
      const x = rng.next();
      return trial % 3 === 0
        ? Math.round((x - 0.5) * 6) // many ties
        : x < 0.02
        ? -Infinity
        : x < 0.04
        ? -0
        : (x - 0.5) * 16;
    });
    row[trial % v] = 3; // one finite maximum at least
    const us = [rng.next(), rng.next(), 0.999];
    for (const o of opts) {
      const got = draw(row, v, us, o);
      us.forEach((u, i) => {
        const want = plainDraw(row, u, o);
        const at = `trial ${trial}, v ${v}, ${JSON.stringify(o)}, u ${u}`;
        assert.equal(got.tokens[i], want.token, at);
        assert.equal(got.logprobs[i], want.logprob, at);
      });
    }
  }
});
