import assert from "node:assert/strict";
import { FreeLists } from "./free_lists.ts";

Deno.test("FreeLists hands out the oldest free item of a key, whatever the order it was freed in", () => {
  const lists = new FreeLists<number, { n: number }>();
  const items = [0, 1, 2, 3].map((n) => lists.stamp({ n }));
  for (const i of [2, 0, 3, 1]) lists.put(8, items[i]);
  const other = lists.stamp({ n: 4 });
  lists.put(16, other);
  assert.equal(lists.idle, 5);
  assert.deepEqual([0, 1, 2, 3].map(() => lists.take(8)!.n), [0, 1, 2, 3]);
  assert.equal(lists.take(8), undefined);
  assert.equal(lists.take(16), other);
  assert.equal(lists.idle, 0);
  // The same frees in another order give the same takes.
  for (const i of [1, 3, 0, 2]) lists.put(8, items[i]);
  assert.equal(lists.take(8), items[0]);
  assert.deepEqual(lists.drain().map((x) => x.n).sort(), [1, 2, 3]);
  assert.equal(lists.idle, 0);
});
