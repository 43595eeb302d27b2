import assert from "node:assert/strict";
import { CpuBackend } from "./backend.ts";

const be = new CpuBackend();

Deno.test("repetitionPenalty divides positive logits and multiplies negative ones where seen", async () => {
  const logits = be.fromArray(new Float32Array([2, -2, 0, 1, 3, -3]), [2, 3]);
  const seen = be.fromArray(new Float32Array([1, 1, 1, 0, 1, 0]), [2, 3]);
  be.repetitionPenalty(logits, seen, 2);
  assert.deepEqual([...await be.read(logits)], [1, -4, 0, 1, 1.5, -3]);
  // in f32, with the penalty rounded to f32 (as torch's f32 tensor ÷ a Python float)
  const x = be.fromArray(new Float32Array([1, -1]), [1, 2]);
  be.repetitionPenalty(x, be.fromArray(new Float32Array([1, 1]), [1, 2]), 1.3);
  const p = Math.fround(1.3);
  assert.deepEqual([...await be.read(x)], [
    Math.fround(1 / p),
    Math.fround(-1 * p),
  ]);
  assert.throws(
    () => be.repetitionPenalty(logits, seen, 0),
    /penalty must be a finite number > 0: got 0/,
  );
  assert.throws(
    () => be.repetitionPenalty(logits, be.zeros([3, 2]), 2),
    /seen must be \[2,3\]/,
  );
});

Deno.test("markTokens marks each row's ids once, however often they occur", async () => {
  const seen = be.zeros([2, 5]);
  be.markTokens(seen, be.fromInts(new Int32Array([0, 3, 3, 4, 4, 4]), [6]));
  assert.deepEqual([...await be.read(seen)], [1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
  be.markTokens(seen, be.fromInts(new Int32Array([1, 4]), [2]));
  assert.deepEqual([...await be.read(seen)], [1, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
  assert.throws(
    () => be.markTokens(seen, be.fromInts(new Int32Array([1, 5]), [2])),
    /tokens\[1\] must be in \[0, 5\): got 5/,
  );
  assert.throws(
    () => be.markTokens(seen, be.fromInts(new Int32Array([1, 2, 3]), [3])),
    /must be \[B·n\]/,
  );
});
