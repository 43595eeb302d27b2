import assert from "node:assert/strict";
import { fastExp } from "./fast_exp.ts";

Deno.test("fastExp agrees with Math.exp to 1e-8 relative over [-100, 100]", () => {
  let worst = 0;
  for (let i = 0; i <= 200_000; i++) {
    const x = -100 + i * 0.001;
    const want = Math.exp(x);
    worst = Math.max(worst, Math.abs(fastExp(x) - want) / want);
  }
  assert.ok(worst < 1e-8, `max rel error ${worst}`);
  assert.equal(fastExp(0), 1);
  assert.ok(
    Math.abs(fastExp(-1000) / Math.exp(-100) - 1) < 1e-8,
    "clamped below",
  );
});
