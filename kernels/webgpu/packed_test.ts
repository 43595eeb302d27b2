import assert from "node:assert/strict";
import { planArena } from "./packed.ts";

Deno.test("planArena aligns offsets and starts a new arena at the limit", () => {
  const p = planArena([10, 100, 50, 2000, 1], 256, 1024);
  assert.deepEqual(p.place, [
    { arena: 0, offset: 0 }, // 40 bytes
    { arena: 0, offset: 256 }, // 400 bytes, to 656
    { arena: 0, offset: 768 }, // 200 bytes, to 968
    { arena: -1, offset: 0 }, // 8000 bytes alone exceed the limit
    { arena: 1, offset: 0 }, // 1024 + 4 would pass it
  ]);
  assert.deepEqual(p.arenaBytes, [968, 4]);
});

Deno.test("planArena of empty tensors gives each 4 bytes", () => {
  const p = planArena([0, 0], 32, 1 << 20);
  assert.deepEqual(p.place, [{ arena: 0, offset: 0 }, {
    arena: 0,
    offset: 32,
  }]);
  assert.deepEqual(p.arenaBytes, [36]);
});
