import assert from "node:assert/strict";
import { BindGroupCache } from "./bind_groups.ts";

const fake = (n: number) => ({ label: `g${n}` }) as unknown as GPUBindGroup;

Deno.test("BindGroupCache makes a group once per key and drops the least recently used past its capacity", () => {
  const cache = new BindGroupCache(2);
  let made = 0;
  const make = () => fake(made++);
  const a = cache.get("a", make);
  assert.equal(cache.get("a", make), a);
  const b = cache.get("b", make);
  cache.get("a", make); // a is now the most recently used
  cache.get("c", make); // evicts b
  assert.equal(cache.size, 2);
  assert.equal(made, 3);
  assert.equal(cache.get("a", make), a);
  assert.notEqual(cache.get("b", make), b, "b was evicted and is made anew");
  assert.equal(made, 4);
  assert.deepEqual([cache.hits, cache.misses], [3, 4]);
});
