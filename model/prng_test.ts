import assert from "node:assert/strict";
import { hashStringToSeed, Prng, PrngError } from "./prng.ts";

Deno.test("Prng.nextU32() matches the xoshiro128** C reference", () => {
  // Outputs of Blackman & Vigna's xoshiro128starstar.c from these states.
  const a = Prng.fromState([1, 2, 3, 4]);
  assert.deepEqual(
    Array.from({ length: 6 }, () => a.nextU32()),
    [11520, 0, 5927040, 70819200, 2031721883, 1637235492],
  );
  const b = Prng.fromState([0xdeadbeef, 0x12345678, 0xffffffff, 0x80000000]);
  assert.deepEqual(
    Array.from({ length: 6 }, () => b.nextU32()),
    [2576977301, 2031002624, 493879743, 1881573885, 1588474099, 315906604],
  );
});

Deno.test("Prng is deterministic per seed and differs across seeds", () => {
  const draw = (rng: Prng) => Array.from({ length: 8 }, () => rng.nextU32());
  assert.deepEqual(draw(new Prng(7)), draw(new Prng(7)));
  assert.notDeepEqual(draw(new Prng(7)), draw(new Prng(8)));
  // Seeds that differ only in the high 32 bits give different streams.
  assert.notDeepEqual(draw(new Prng(1)), draw(new Prng(1 + 2 ** 32)));
  assert.deepEqual(draw(Prng.fromString("x")), draw(Prng.fromString("x")));
  assert.notDeepEqual(draw(Prng.fromString("x")), draw(Prng.fromString("y")));
});

Deno.test("Prng getState/fromState resumes the same stream", () => {
  const rng = new Prng(123);
  rng.nextU32();
  const saved = rng.getState();
  const expected = [rng.nextU32(), rng.nextFloat(), rng.normal()];
  const resumed = Prng.fromState(saved);
  assert.deepEqual(
    [resumed.nextU32(), resumed.nextFloat(), resumed.normal()],
    expected,
  );
});

Deno.test("Prng.nextFloat() is in [0, 1) with mean near 1/2", () => {
  const rng = new Prng(99);
  let sum = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const u = rng.nextFloat();
    assert.ok(u >= 0 && u < 1, `got ${u}`);
    sum += u;
  }
  assert.ok(Math.abs(sum / n - 0.5) < 0.01, `mean ${sum / n}`);
});

Deno.test("Prng.normal() has the requested mean and standard deviation", () => {
  const rng = new Prng(5);
  const n = 40000;
  const xs = rng.fillNormal(new Float64Array(n), 3, 2);
  const mean = xs.reduce((a, x) => a + x, 0) / n;
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / n;
  assert.ok(Math.abs(mean - 3) < 0.05, `mean ${mean}`);
  assert.ok(
    Math.abs(Math.sqrt(variance) - 2) < 0.05,
    `std ${Math.sqrt(variance)}`,
  );
});

Deno.test("Prng.nextInt() covers [0, n) evenly", () => {
  const rng = new Prng(11);
  const counts = new Array(5).fill(0);
  for (let i = 0; i < 10000; i++) counts[rng.nextInt(5)]++;
  for (const c of counts) {
    assert.ok(Math.abs(c - 2000) < 200, `counts ${counts}`);
  }
  assert.throws(() => rng.nextInt(0), PrngError);
});

Deno.test("Prng rejects bad seeds and states", () => {
  assert.throws(() => new Prng(1.5), /seed must be a safe integer: got 1.5/);
  assert.throws(() => Prng.fromState([0, 0, 0, 0]), /all zeros/);
  assert.throws(() => Prng.fromState([1, 2, 3]), PrngError);
  assert.throws(() => Prng.fromState([1, 2, 3, 2 ** 32]), PrngError);
});

Deno.test("hashStringToSeed() is a stable 53-bit FNV-1a", () => {
  // FNV-1a 64 of "" is the offset basis 0xcbf29ce484222325; of "a" 0xaf63dc4c8601ec8c.
  assert.equal(
    hashStringToSeed(""),
    Number(0xcbf29ce484222325n & 0x1fffffffffffffn),
  );
  assert.equal(
    hashStringToSeed("a"),
    Number(0xaf63dc4c8601ec8cn & 0x1fffffffffffffn),
  );
});

Deno.test("Prng.fillNormal() pairs cosine and sine of one Box–Muller draw", () => {
  const a = new Prng(3);
  const xs = a.fillNormal(new Float64Array(3));
  const b = new Prng(3);
  const r = Math.sqrt(-2 * Math.log(1 - b.nextFloat()));
  const theta = 2 * Math.PI * b.nextFloat();
  assert.equal(xs[0], r * Math.cos(theta));
  assert.equal(xs[1], r * Math.sin(theta));
  // The odd tail uses a fresh draw's cosine; both generators then stay in step.
  const r2 = Math.sqrt(-2 * Math.log(1 - b.nextFloat()));
  assert.equal(xs[2], r2 * Math.cos(2 * Math.PI * b.nextFloat()));
  assert.equal(a.nextU32(), b.nextU32());
});
