import assert from "node:assert/strict";
import { fmt, median, ratio } from "./stats.ts";

Deno.test("median: odd, even, unsorted and empty inputs", () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(median([7]), 7);
  assert.equal(median([]), null);
});

Deno.test("ratio and fmt: missing values stay missing", () => {
  assert.equal(ratio(3, 2), 1.5);
  assert.equal(ratio(null, 2), null);
  assert.equal(ratio(3, 0), null);
  assert.equal(fmt(1234.5), "1235");
  assert.equal(fmt(12.345), "12.3");
  assert.equal(fmt(null), "—");
});
